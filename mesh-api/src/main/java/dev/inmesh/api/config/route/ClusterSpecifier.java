package dev.inmesh.api.config.route;

import dev.inmesh.api.config.Checks;
import dev.inmesh.api.config.core.HeaderMutations;
import java.util.List;

/** Where a {@link RouteAction} sends the request: one cluster, weighted clusters, or a cluster named by a header. */
public sealed interface ClusterSpecifier {

    /** One named cluster. */
    record Named(String cluster) implements ClusterSpecifier {
        public Named {
            Checks.nonEmpty(cluster, "cluster");
        }
    }

    /** The cluster named by a request header; no header, or an unknown cluster, answers 503 NC. */
    record FromHeader(String header) implements ClusterSpecifier {
        public FromHeader {
            Checks.nonEmpty(header, "cluster_header");
        }
    }

    /**
     * Clusters picked by weight: with {@code R} a random number, {@code R % total} falls into the cumulative range of
     * one cluster, in list order. A cluster of weight 0 is never picked; the weights must not sum to 0.
     *
     * @param runtimeKeyPrefix where the runtime may give each cluster another weight
     *     ({@code weighted_clusters.runtime_key_prefix}): the key {@code PREFIX.NAME} of a cluster named {@code NAME};
     *     null for none
     */
    record Weighted(List<ClusterWeight> clusters, String runtimeKeyPrefix) implements ClusterSpecifier {
        public Weighted {
            clusters = Checks.list(clusters, "weighted_clusters.clusters");
            Checks.check(!clusters.isEmpty(), "weighted_clusters.clusters", "[]", "at least one cluster");
            long total = clusters.stream().mapToLong(ClusterWeight::weight).sum();
            Checks.check(total > 0, "weighted_clusters.clusters.weight", "sum " + total, "a sum > 0");
            Checks.check(total <= 0xFFFFFFFFL, "weighted_clusters.clusters.weight", "sum " + total,
                    "a sum <= 4294967295");
            runtimeKeyPrefix = runtimeKeyPrefix == null || runtimeKeyPrefix.isEmpty() ? null : runtimeKeyPrefix;
        }

        /** Clusters picked by the weights they are given, which the runtime does not change. */
        public Weighted(List<ClusterWeight> clusters) {
            this(clusters, null);
        }

        public long totalWeight() {
            return clusters.stream().mapToLong(ClusterWeight::weight).sum();
        }
    }

    /**
     * One entry of a weighted split.
     *
     * @param hostRewriteLiteral the Host sent upstream when this entry is picked ({@code host_rewrite_literal}, which
     *     istiod writes for a weighted destination whose headers set {@code host} or {@code :authority}), or null;
     *     as in Envoy, the route action's own {@code host_rewrite_literal}, applied after it, wins over it
     */
    record ClusterWeight(String name, String clusterHeader, long weight, HeaderMutations headers,
                         String hostRewriteLiteral) {
        public ClusterWeight {
            name = name == null ? "" : name;
            clusterHeader = clusterHeader == null ? "" : clusterHeader;
            Checks.check(name.isEmpty() != clusterHeader.isEmpty(), "weighted_clusters.clusters.name", name,
                    "exactly one of name and cluster_header");
            Checks.check(weight >= 0, "weighted_clusters.clusters.weight", weight, ">= 0");
            headers = headers == null ? HeaderMutations.NONE : headers;
            hostRewriteLiteral = hostRewriteLiteral == null || hostRewriteLiteral.isEmpty() ? null
                    : hostRewriteLiteral;
        }

        /** An entry that leaves the Host as the route makes it. */
        public ClusterWeight(String name, String clusterHeader, long weight, HeaderMutations headers) {
            this(name, clusterHeader, weight, headers, null);
        }
    }
}
