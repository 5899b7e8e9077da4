package dev.inmesh.runtime.router;

import dev.inmesh.api.config.core.Metadata;
import dev.inmesh.runtime.stats.WorkloadInfo;
import dev.inmesh.runtime.upstream.Host;
import dev.inmesh.runtime.upstream.UpstreamCluster;

/**
 * The destination service and workload of an upstream request, as Istio's telemetry labels them
 * ({@code istio_stats.cc}, {@code populatePeerInfo}): the service from the cluster's {@code istio} metadata
 * ({@code services: [{host, name, namespace}]}; without a {@code name}, the host's first label), the workload from the
 * endpoint's {@code istio.workload} ({@code workload;namespace;canonical_service;canonical_revision;cluster}, which
 * names no {@code app} nor {@code version}); each unknown (null) without them, as Istio reads neither from the
 * cluster's name (the service is then the request's Host, {@code MeshMetrics}, the workload the metadata exchange's or
 * unknown). The router labels its requests with them, and the standalone proxy its {@code tcp_proxy} connections. The
 * service's namespace is the metadata's only (null without it), as Istio's client-side stats read it before falling
 * back to the peer's.
 */
public record ServiceLabels(String host, String name, String namespace, WorkloadInfo workload) {
    public static final ServiceLabels UNKNOWN = new ServiceLabels(null, null, null, WorkloadInfo.UNKNOWN);

    /** Labels by host, each with the cluster config it was computed for; cleared when it grows large. */
    private static final java.util.concurrent.ConcurrentHashMap<Object, Cached> CACHE =
            new java.util.concurrent.ConcurrentHashMap<>();
    private static final int MAX_CACHED = 16_384;

    private record Cached(dev.inmesh.api.config.cluster.Cluster config, ServiceLabels labels) {}

    /**
     * The labels of a request to {@code host} of {@code cluster} (null: no host picked), computed once per host and
     * cluster config; {@link #UNKNOWN} without a cluster.
     */
    public static ServiceLabels of(UpstreamCluster cluster, Host host) {
        if (cluster == null) {
            return UNKNOWN;
        }
        Object key = host != null ? host : cluster;
        dev.inmesh.api.config.cluster.Cluster config = cluster.config();
        Cached c = CACHE.get(key);
        if (c != null && c.config == config) {
            return c.labels;
        }
        ServiceLabels labels = compute(cluster, host);
        if (CACHE.size() >= MAX_CACHED) {
            CACHE.clear();
        }
        CACHE.put(key, new Cached(config, labels));
        return labels;
    }

    /**
     * Whether Istio's stats name the service of a connection through {@code clusterName} by the cluster itself:
     * {@code PassthroughCluster} and {@code BlackHoleCluster}, whose bytes are for no service known.
     */
    public static boolean namesCluster(String clusterName) {
        return clusterName.equals("PassthroughCluster") || clusterName.equals("BlackHoleCluster");
    }

    /**
     * The destination service of an inbound {@code tcp_proxy} connection to {@code clusterName} (empty when none) of
     * {@code cluster} (null when it does not exist), as Istio's server-side stats label its TCP metrics: the first
     * service of the cluster's {@code istio} metadata (what Istio's {@code inbound|PORT||} clusters carry); the
     * cluster's name as the service name for an {@code InboundPassthroughCluster*} and where {@link #namesCluster};
     * else {@link #UNKNOWN}. The workload is always unknown (the peer's,
     * which no metadata exchange gave). Shared by the standalone proxy's relays and {@code mesh.inbound}'s TCP chains.
     */
    public static ServiceLabels ofInboundConnection(String clusterName, UpstreamCluster cluster) {
        dev.inmesh.runtime.stats.IstioService service = cluster == null ? null
                : dev.inmesh.runtime.stats.IstioService.of(cluster.config().metadata());
        if (service != null) {
            return new ServiceLabels(service.host(), service.nameOrHostLabel(), service.namespace(),
                    WorkloadInfo.UNKNOWN);
        }
        if (clusterName.startsWith("InboundPassthroughCluster") || namesCluster(clusterName)) {
            return new ServiceLabels(null, clusterName, null, WorkloadInfo.UNKNOWN);
        }
        return UNKNOWN;
    }

    private static ServiceLabels compute(UpstreamCluster cluster, Host host) {
        dev.inmesh.runtime.stats.IstioService service = dev.inmesh.runtime.stats.IstioService.of(
                cluster.config().metadata());
        WorkloadInfo w = host == null ? WorkloadInfo.UNKNOWN : workload(host.metadata());
        if (service == null) {
            return new ServiceLabels(null, null, null, w);
        }
        return new ServiceLabels(service.host(), service.nameOrHostLabel(), service.namespace(), w);
    }

    /**
     * The workload an endpoint's {@code istio.workload} names, as Istio's {@code convertEndpointMetadata}
     * ({@code extensions/common/metadata_object.cc}) reads it: {@code workload;namespace;canonical_service;
     * canonical_revision;cluster}, five fields or more; the encoding has no {@code app} nor {@code version} label, so
     * both are unknown. {@link WorkloadInfo#UNKNOWN} for fewer fields or none.
     */
    static WorkloadInfo workload(Metadata md) {
        if (md.get("istio", "workload") instanceof String s) {
            String[] p = s.split(";", -1);
            if (p.length >= 5) {
                return new WorkloadInfo(p[0], p[1], null, null, p[2], p[3], p[4]);
            }
        }
        return WorkloadInfo.UNKNOWN;
    }
}
