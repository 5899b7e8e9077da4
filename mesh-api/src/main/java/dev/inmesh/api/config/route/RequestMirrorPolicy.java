package dev.inmesh.api.config.route;

import dev.inmesh.api.config.Checks;
import dev.inmesh.api.config.core.FractionalPercent;

/**
 * A copy of a route's requests sent to another cluster, its answer ignored ({@code RouteAction.RequestMirrorPolicy},
 * Istio's {@code mirror} and {@code mirrorPercentage}).
 *
 * @param cluster the cluster the copy goes to, or null when {@code clusterHeader} names it
 * @param clusterHeader the request header whose value names the cluster, or null; a request without it is not copied
 * @param runtimeFraction the share of requests copied ({@code runtime_fraction.default_value}); null for all
 * @param disableShadowHostSuffixAppend whether the copy keeps the request's Host as it is, where by default
 *     {@code -shadow} is added to its host name
 * @param traceSampled whether the span of a traced request's copy is sampled ({@code trace_sampled}; Istio writes
 *     false); null: as the request's span is
 * @param runtimeKey the runtime key whose value, when the runtime has one, is the share copied instead of
 *     {@code runtimeFraction}'s ({@code runtime_fraction.runtime_key}); null for none
 */
public record RequestMirrorPolicy(String cluster, String clusterHeader, FractionalPercent runtimeFraction,
                                  boolean disableShadowHostSuffixAppend, Boolean traceSampled, String runtimeKey) {
    public RequestMirrorPolicy {
        cluster = cluster == null || cluster.isEmpty() ? null : cluster;
        clusterHeader = clusterHeader == null || clusterHeader.isEmpty() ? null : clusterHeader;
        Checks.check((cluster == null) != (clusterHeader == null), "cluster", cluster,
                "exactly one of cluster or cluster_header");
        runtimeKey = runtimeKey == null || runtimeKey.isEmpty() ? null : runtimeKey;
    }

    /** A policy whose share, if any, has no runtime key. */
    public RequestMirrorPolicy(String cluster, String clusterHeader, FractionalPercent runtimeFraction,
                               boolean disableShadowHostSuffixAppend, Boolean traceSampled) {
        this(cluster, clusterHeader, runtimeFraction, disableShadowHostSuffixAppend, traceSampled, null);
    }

    /**
     * Every request copied to {@code cluster}, its Host suffixed with {@code -shadow}, its span sampled as the
     * request's.
     */
    public static RequestMirrorPolicy to(String cluster) {
        return new RequestMirrorPolicy(cluster, null, null, false, null);
    }
}
