package dev.inmesh.runtime.stats;

/**
 * Who a workload is, for Istio's metric labels: workload name, namespace, {@code app} and {@code version} labels.
 * {@link #UNKNOWN} stands for a peer whose identity is not known.
 */
public record WorkloadInfo(String workload, String namespace, String app, String version) {
    public static final WorkloadInfo UNKNOWN = new WorkloadInfo("unknown", "unknown", "unknown", "unknown");

    public WorkloadInfo {
        workload = orUnknown(workload);
        namespace = orUnknown(namespace);
        app = orUnknown(app);
        version = orUnknown(version);
    }

    private static String orUnknown(String s) {
        return s == null || s.isEmpty() ? "unknown" : s;
    }
}
