package dev.inmesh.runtime.stats;

/**
 * Who a workload is, for Istio's metric labels: workload name, namespace, {@code app} and {@code version} labels, its
 * canonical service and revision, and its cluster. {@link #UNKNOWN} stands for a peer whose identity is not known.
 *
 * @param canonicalService Istio's canonical service ({@code service.istio.io/canonical-name}); {@code unknown} when
 *     not known
 * @param canonicalRevision Istio's canonical revision ({@code service.istio.io/canonical-revision}); {@code latest}
 *     when not known, as Istio reports it
 * @param cluster the cluster id the workload runs in ({@code CLUSTER_ID}); {@code unknown} when not known
 */
public record WorkloadInfo(String workload, String namespace, String app, String version, String canonicalService,
                           String canonicalRevision, String cluster) {
    public static final WorkloadInfo UNKNOWN = new WorkloadInfo("unknown", "unknown", "unknown", "unknown", null,
            null, null);

    public WorkloadInfo {
        workload = orUnknown(workload);
        namespace = orUnknown(namespace);
        app = orUnknown(app);
        version = orUnknown(version);
        canonicalService = orUnknown(canonicalService);
        canonicalRevision = canonicalRevision == null || canonicalRevision.isEmpty() ? "latest" : canonicalRevision;
        cluster = orUnknown(cluster);
    }

    /**
     * A workload known by its name and labels: its canonical service and revision default as Istio's injector derives
     * them for a pod without the canonical labels, to the {@code app} label (else the workload name) and the
     * {@code version} label (else {@code latest}); its cluster is not known.
     */
    public WorkloadInfo(String workload, String namespace, String app, String version) {
        this(workload, namespace, app, version, app == null || app.isEmpty() ? workload : app, version, null);
    }

    private static String orUnknown(String s) {
        return s == null || s.isEmpty() ? "unknown" : s;
    }
}
