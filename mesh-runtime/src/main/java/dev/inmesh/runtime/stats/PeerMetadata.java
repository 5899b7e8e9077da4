package dev.inmesh.runtime.stats;

import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.Struct;
import com.google.protobuf.Value;
import java.util.Base64;

/**
 * Istio's HTTP metadata exchange: a workload's identity sent in {@code x-envoy-peer-metadata} (a base64
 * {@code google.protobuf.Struct} with {@code NAME} (the pod), {@code NAMESPACE}, {@code WORKLOAD_NAME},
 * {@code CLUSTER_ID}, and {@code LABELS} with {@code app}, {@code version} and Istio's canonical service labels)
 * and {@code x-envoy-peer-metadata-id}, so that the receiving side can label its metrics with the caller. Inmesh and
 * Istio sidecars read each other's.
 */
public final class PeerMetadata {
    public static final String HEADER = "x-envoy-peer-metadata";
    public static final String ID_HEADER = "x-envoy-peer-metadata-id";
    private static final String CANONICAL_NAME = "service.istio.io/canonical-name";
    private static final String CANONICAL_REVISION = "service.istio.io/canonical-revision";
    /** Header values decoded so far; a peer sends the same value on every request, so it is parsed once. */
    static final int MAX_CACHED = 256;
    /** Longer values (a caller controls the header) are parsed each time rather than held in the cache. */
    static final int MAX_CACHED_CHARS = 8192;
    private static final java.util.concurrent.ConcurrentHashMap<String, WorkloadInfo> CACHE =
            new java.util.concurrent.ConcurrentHashMap<>();

    private PeerMetadata() {}

    /** The header value for a workload whose pod is not known: its {@code NAME} is the workload's. */
    public static String encode(WorkloadInfo w, String clusterId) {
        return encode(w, clusterId, null);
    }

    /**
     * The header value for a workload, {@code instanceName} its pod ({@code NAME}, as Istio's header names the
     * node's {@code NAME}); null or empty: the workload's name.
     */
    public static String encode(WorkloadInfo w, String clusterId, String instanceName) {
        Struct labels = Struct.newBuilder()
                .putFields("app", str(w.app()))
                .putFields("version", str(w.version()))
                .putFields(CANONICAL_NAME, str(w.canonicalService()))
                .putFields(CANONICAL_REVISION, str(w.canonicalRevision()))
                .build();
        Struct s = Struct.newBuilder()
                .putFields("NAMESPACE", str(w.namespace()))
                .putFields("WORKLOAD_NAME", str(w.workload()))
                .putFields("NAME", str(instanceName == null || instanceName.isEmpty() ? w.workload() : instanceName))
                .putFields("CLUSTER_ID", str(clusterId))
                .putFields("LABELS", Value.newBuilder().setStructValue(labels).build())
                .build();
        return Base64.getEncoder().encodeToString(s.toByteArray());
    }

    /**
     * The workload a header value describes, or {@link WorkloadInfo#UNKNOWN} when absent or unreadable. As Istio reads
     * a peer, a missing canonical service is {@code unknown} and a missing canonical revision {@code latest}. Decoded
     * values are cached by the header value (at most {@link #MAX_CACHED}; the cache starts over when full), so that a
     * peer that sends the same value on each request costs one lookup, not a protobuf parse; values longer than
     * {@link #MAX_CACHED_CHARS} are parsed each time, so that the cache holds about 2 MiB of (ASCII) keys at most.
     */
    public static WorkloadInfo decode(String header) {
        if (header == null || header.isEmpty()) {
            return WorkloadInfo.UNKNOWN;
        }
        if (header.length() > MAX_CACHED_CHARS) {
            return parse(header);
        }
        WorkloadInfo w = CACHE.get(header);
        if (w == null) {
            w = parse(header);
            if (CACHE.size() >= MAX_CACHED) {
                CACHE.clear();
            }
            CACHE.put(header, w);
        }
        return w;
    }

    /** How many decoded values are cached (tests). */
    static int cachedCount() {
        return CACHE.size();
    }

    private static WorkloadInfo parse(String header) {
        try {
            Struct s = Struct.parseFrom(Base64.getDecoder().decode(header.trim()));
            Struct labels = s.getFieldsOrDefault("LABELS", Value.getDefaultInstance()).getStructValue();
            String workload = text(s, "WORKLOAD_NAME");
            return new WorkloadInfo(workload.isEmpty() ? text(s, "NAME") : workload, text(s, "NAMESPACE"),
                    firstNonEmpty(text(labels, "app"), text(labels, "app.kubernetes.io/name")),
                    firstNonEmpty(text(labels, "version"), text(labels, "app.kubernetes.io/version")),
                    text(labels, CANONICAL_NAME), text(labels, CANONICAL_REVISION), text(s, "CLUSTER_ID"));
        } catch (IllegalArgumentException | InvalidProtocolBufferException e) {
            return WorkloadInfo.UNKNOWN;
        }
    }

    private static Value str(String v) {
        return Value.newBuilder().setStringValue(v == null ? "" : v).build();
    }

    private static String text(Struct s, String key) {
        Value v = s.getFieldsMap().get(key);
        return v == null ? "" : v.getStringValue();
    }

    private static String firstNonEmpty(String a, String b) {
        return a.isEmpty() ? b : a;
    }
}
