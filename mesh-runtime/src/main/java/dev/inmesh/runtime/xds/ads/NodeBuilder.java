package dev.inmesh.runtime.xds.ads;

import com.google.protobuf.Struct;
import com.google.protobuf.Value;
import io.envoyproxy.envoy.config.core.v3.Node;
import java.util.Map;
import java.util.TreeMap;

/** Builds the {@code Node} a sidecar presents to istiod, with the metadata istiod reads. */
public final class NodeBuilder {
    /** The user agent this proxy names itself with. */
    public static final String USER_AGENT = "inmesh";

    private NodeBuilder() {}

    /** The node for these options. */
    public static Node build(NodeOptions o) {
        Struct.Builder meta = Struct.newBuilder();
        for (Map.Entry<String, String> e : o.extraMetadata().entrySet()) {
            meta.putFields(e.getKey(), str(e.getValue()));
        }
        Struct.Builder labels = Struct.newBuilder();
        new TreeMap<>(o.labels()).forEach((k, v) -> labels.putFields(k, str(v)));
        meta.putFields("NAME", str(o.podName()));
        meta.putFields("NAMESPACE", str(o.namespace()));
        meta.putFields("INSTANCE_IPS", str(o.podIp()));
        meta.putFields("LABELS", Value.newBuilder().setStructValue(labels).build());
        meta.putFields("ISTIO_VERSION", str(o.istioVersion()));
        meta.putFields("CLUSTER_ID", str(o.clusterId()));
        meta.putFields("MESH_ID", str(o.meshId()));
        meta.putFields("WORKLOAD_NAME", str(o.workloadName()));
        meta.putFields("INTERCEPTION_MODE", str(o.interceptionMode()));
        meta.putFields("DNS_DOMAIN", str(o.dnsDomain()));
        return Node.newBuilder()
                .setId(o.nodeId())
                .setCluster(o.cluster())
                .setMetadata(meta)
                .setUserAgentName(USER_AGENT)
                .setUserAgentVersion(version())
                .build();
    }

    private static String version() {
        String v = NodeBuilder.class.getPackage().getImplementationVersion();
        return v == null ? "dev" : v;
    }

    private static Value str(String s) {
        return Value.newBuilder().setStringValue(s).build();
    }
}
