package dev.inmesh.runtime.xds.ads;

import com.google.protobuf.Struct;
import com.google.protobuf.Value;
import io.envoyproxy.envoy.config.core.v3.BuildVersion;
import io.envoyproxy.envoy.config.core.v3.Node;
import io.envoyproxy.envoy.type.v3.SemanticVersion;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** Builds the {@code Node} a sidecar presents to istiod, with the metadata istiod reads. */
public final class NodeBuilder {
    /** The user agent this proxy names itself with. */
    public static final String USER_AGENT = "inmesh";
    /** The node metadata naming the proxy's build, as Istio's sidecar image sets it (ISTIO_META_ISTIO_PROXY_SHA). */
    private static final String PROXY_SHA = "ISTIO_PROXY_SHA";
    /** A version as Envoy's build version holds it: {@code major.minor.patch}, then an optional {@code -label}. */
    private static final Pattern SEMVER = Pattern.compile("(\\d{1,9})\\.(\\d{1,9})\\.(\\d{1,9})(?:-(.+))?");

    private NodeBuilder() {}

    /** The node for these options. */
    public static Node build(NodeOptions o) {
        return build(o, version());
    }

    /**
     * The node for these options, this proxy's version {@code version}: as Envoy's, a {@code user_agent_build_version}
     * ({@code major.minor.patch}, and a {@code -label} as its {@code build.label}), which istioctl's
     * {@code proxy-config bootstrap -o short} prints as the proxy's version; a version of another form (a build
     * from the sources, {@code dev}) as {@code user_agent_version}. The metadata's {@code ISTIO_PROXY_SHA} is
     * {@code inmesh:VERSION} unless the options' metadata gives one, as Istio's sidecar image gives its proxy build
     * ({@code istio-proxy:SHA}), which istioctl prints as the Istio Proxy Version.
     */
    public static Node build(NodeOptions o, String version) {
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
        if (!o.extraMetadata().containsKey(PROXY_SHA)) {
            meta.putFields(PROXY_SHA, str(USER_AGENT + ":" + version));
        }
        meta.putFields("CLUSTER_ID", str(o.clusterId()));
        meta.putFields("MESH_ID", str(o.meshId()));
        meta.putFields("WORKLOAD_NAME", str(o.workloadName()));
        meta.putFields("INTERCEPTION_MODE", str(o.interceptionMode()));
        meta.putFields("DNS_DOMAIN", str(o.dnsDomain()));
        return withAgent(Node.newBuilder().setId(o.nodeId()).setCluster(o.cluster()).setMetadata(meta), version)
                .build();
    }

    /**
     * A node with only an id and this proxy's user agent and version: Envoy's local node where no xDS server is
     * configured (its user agent is there whatever its bootstrap says).
     */
    public static Node local(String id) {
        return withAgent(Node.newBuilder().setId(id == null ? "" : id), version()).build();
    }

    /**
     * The local node of a bootstrap's {@code node} (its id, cluster, metadata, locality as written), with the proxy's
     * user agent and version, as Envoy fills its own in.
     */
    public static Node local(Node bootstrap) {
        return withAgent(bootstrap.toBuilder(), version()).build();
    }

    private static Node.Builder withAgent(Node.Builder node, String version) {
        node.setUserAgentName(USER_AGENT);
        Matcher semver = SEMVER.matcher(version);
        if (!semver.matches()) {
            return node.setUserAgentVersion(version);
        }
        BuildVersion.Builder build = BuildVersion.newBuilder().setVersion(SemanticVersion.newBuilder()
                .setMajorNumber(Integer.parseInt(semver.group(1)))
                .setMinorNumber(Integer.parseInt(semver.group(2)))
                .setPatch(Integer.parseInt(semver.group(3))));
        if (semver.group(4) != null) {
            build.setMetadata(Struct.newBuilder().putFields("build.label", str(semver.group(4))));
        }
        return node.setUserAgentBuildVersion(build);
    }

    private static String version() {
        String v = NodeBuilder.class.getPackage().getImplementationVersion();
        return v == null ? "dev" : v;
    }

    private static Value str(String s) {
        return Value.newBuilder().setStringValue(s).build();
    }
}
