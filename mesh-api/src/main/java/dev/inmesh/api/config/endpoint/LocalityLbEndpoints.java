package dev.inmesh.api.config.endpoint;

import dev.inmesh.api.config.Checks;
import java.util.List;

/**
 * The endpoints of one locality at one priority. {@code loadBalancingWeight} is the locality's weight for
 * locality-weighted load balancing; 0 means unset (such a locality takes no traffic when locality weighting is on).
 */
public record LocalityLbEndpoints(Locality locality, List<LbEndpoint> lbEndpoints, int loadBalancingWeight,
                                  int priority) {
    public LocalityLbEndpoints {
        locality = locality == null ? Locality.EMPTY : locality;
        lbEndpoints = Checks.list(lbEndpoints, "lb_endpoints");
        Checks.check(loadBalancingWeight >= 0, "load_balancing_weight", loadBalancingWeight, ">= 0");
        Checks.check(priority >= 0 && priority <= 127, "priority", priority, "0..127");
    }
}
