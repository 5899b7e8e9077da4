package dev.inmesh.runtime.router;

import dev.inmesh.api.config.core.Metadata;
import dev.inmesh.runtime.stats.WorkloadInfo;
import dev.inmesh.runtime.upstream.Host;
import dev.inmesh.runtime.upstream.UpstreamCluster;

/**
 * The destination service and workload of an upstream request, as Istio's telemetry labels them: from the cluster's
 * {@code istio} metadata ({@code services: [{host, name, namespace}]}) and the endpoint's {@code istio.workload}
 * ({@code name;namespace;app;version;cluster}; Istio writes the canonical service and revision in the third and fourth
 * places, which are read as both), else from Istio's cluster name {@code outbound|PORT|SUBSET|FQDN}. The router labels
 * its requests with them, and the standalone proxy its {@code tcp_proxy} connections. The service's namespace is the
 * metadata's only (null without it), as Istio's client-side stats read it before falling back to the peer's.
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
     * else the cluster's service as for a request ({@link #of}, no host). The workload is always unknown (the peer's,
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
        ServiceLabels labels = of(cluster, null);
        return new ServiceLabels(labels.host, labels.name, labels.namespace, WorkloadInfo.UNKNOWN);
    }

    private static ServiceLabels compute(UpstreamCluster cluster, Host host) {
        String svcHost = null;
        String svcName = null;
        String svcNamespace = null;
        String subset = null;
        dev.inmesh.runtime.stats.IstioService service = dev.inmesh.runtime.stats.IstioService.of(
                cluster.config().metadata());
        if (service != null) {
            svcHost = service.host();
            svcName = service.name();
            svcNamespace = service.namespace();
        }
        // the namespace of the name's FQDN names the fallback workload's, not the service's: Istio's stats take a
        // service's namespace from the cluster's metadata only, else the peer's
        String nameNamespace = svcNamespace;
        String[] parts = cluster.name().split("\\|", -1);
        if (parts.length == 4) {
            subset = parts[2].isEmpty() ? null : parts[2];
            if (svcHost == null && !parts[3].isEmpty()) {
                svcHost = parts[3];
                String[] labels = svcHost.split("\\.");
                svcName = labels[0];
                nameNamespace = labels.length > 1 ? labels[1] : null;
            }
        }
        WorkloadInfo w = WorkloadInfo.UNKNOWN;
        if (host != null) {
            w = workload(host.metadata());
        }
        if (w == WorkloadInfo.UNKNOWN && svcName != null) {
            // Without endpoint metadata, Istio's conventions: workload name-version, app = service name.
            w = new WorkloadInfo(subset == null ? svcName : svcName + "-" + subset, nameNamespace, svcName, subset);
        }
        return new ServiceLabels(svcHost, svcName, svcNamespace, w);
    }

    static WorkloadInfo workload(Metadata md) {
        Object v = md.get("istio", "workload");
        if (v instanceof String s && !s.isEmpty()) {
            String[] p = s.split(";", -1);
            String app = p.length > 2 ? p[2] : null;
            String version = p.length > 3 ? p[3] : null;
            return new WorkloadInfo(p[0], p.length > 1 ? p[1] : null, app, version, app, version,
                    p.length > 4 ? p[4] : null);
        }
        return WorkloadInfo.UNKNOWN;
    }
}
