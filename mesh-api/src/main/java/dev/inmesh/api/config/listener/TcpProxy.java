package dev.inmesh.api.config.listener;

import dev.inmesh.api.config.Checks;
import dev.inmesh.api.config.route.ClusterSpecifier;
import java.time.Duration;

/**
 * Envoy's TCP proxy: relays bytes to one cluster, or to weighted clusters.
 *
 * @param statPrefix the stat prefix
 * @param cluster a {@link ClusterSpecifier.Named} or {@link ClusterSpecifier.Weighted} cluster
 * @param idleTimeout the idle timeout (Envoy's default 1 h; zero disables)
 */
public record TcpProxy(String statPrefix, ClusterSpecifier cluster, Duration idleTimeout) implements NetworkFilter {
    public TcpProxy {
        statPrefix = statPrefix == null ? "" : statPrefix;
        Checks.nonNull(cluster, "cluster_specifier");
        Checks.check(!(cluster instanceof ClusterSpecifier.FromHeader), "cluster_specifier", "cluster_header",
                "cluster or weighted_clusters");
        idleTimeout = idleTimeout == null ? Duration.ofHours(1) : idleTimeout;
    }
}
