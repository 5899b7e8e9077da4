package dev.inmesh.api.config.endpoint;

import dev.inmesh.api.config.Checks;
import dev.inmesh.api.config.core.Metadata;
import java.util.List;

/**
 * The endpoints of one locality at one priority. {@code loadBalancingWeight} is the locality's weight for
 * locality-weighted load balancing; 0 means unset (such a locality takes no traffic when locality weighting is on).
 * {@code metadata} is the locality's, which a cluster's transport socket matches consult for an endpoint none of them
 * applies to by its own metadata, as Envoy's.
 */
public record LocalityLbEndpoints(Locality locality, List<LbEndpoint> lbEndpoints, int loadBalancingWeight,
                                  int priority, Metadata metadata) {
    public LocalityLbEndpoints {
        locality = locality == null ? Locality.EMPTY : locality;
        lbEndpoints = Checks.list(lbEndpoints, "lb_endpoints");
        Checks.check(loadBalancingWeight >= 0, "load_balancing_weight", loadBalancingWeight, ">= 0");
        Checks.check(priority >= 0 && priority <= 127, "priority", priority, "0..127");
        metadata = metadata == null ? Metadata.EMPTY : metadata;
    }

    /** A locality without metadata. */
    public LocalityLbEndpoints(Locality locality, List<LbEndpoint> lbEndpoints, int loadBalancingWeight,
                               int priority) {
        this(locality, lbEndpoints, loadBalancingWeight, priority, null);
    }
}
