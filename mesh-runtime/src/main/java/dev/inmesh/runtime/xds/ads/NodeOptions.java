package dev.inmesh.runtime.xds.ads;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;

/**
 * Who this proxy is to istiod: what a sidecar's {@code pilot-agent} learns from the downward API and its
 * {@code ISTIO_META_*} environment. The lead fills it from configuration.
 *
 * @param podName the pod's name ({@code POD_NAME}); the node metadata {@code NAME}
 * @param namespace the pod's namespace ({@code POD_NAMESPACE}); {@code NAMESPACE}
 * @param podIp the pod's IP ({@code INSTANCE_IP}); {@code INSTANCE_IPS}
 * @param dnsDomain the cluster's DNS domain (default {@code cluster.local})
 * @param clusterId the Kubernetes cluster's id as istiod knows it ({@code CLUSTER_ID}, default {@code Kubernetes})
 * @param meshId the mesh id ({@code MESH_ID}, default {@code cluster.local}), or empty
 * @param istioVersion the Istio version to claim ({@code ISTIO_VERSION}), which selects istiod's generated config
 * @param labels the pod's labels ({@code LABELS}), such as {@code app} and {@code version}
 * @param workloadName the workload (the Deployment's name; {@code WORKLOAD_NAME})
 * @param interceptionMode {@code REDIRECT}, {@code TPROXY} or {@code NONE} ({@code INTERCEPTION_MODE})
 * @param serviceCluster the node's {@code cluster}; empty means {@code <app label or workload>.<namespace>}
 * @param extraMetadata more node metadata as strings ({@code SERVICE_ACCOUNT}, {@code OWNER}, ...)
 * @param id the node's id; empty means Istio's sidecar id of the pod ({@link #nodeId})
 */
public record NodeOptions(String podName, String namespace, String podIp, String dnsDomain, String clusterId,
                          String meshId, String istioVersion, Map<String, String> labels, String workloadName,
                          String interceptionMode, String serviceCluster, Map<String, String> extraMetadata,
                          String id) {

    /** The Istio version Inmesh claims by default ({@code ISTIO_VERSION}), whose generated config it reads. */
    public static final String ISTIO_VERSION = "1.24.0";

    public NodeOptions {
        nonEmpty(podName, "podName");
        nonEmpty(namespace, "namespace");
        nonEmpty(podIp, "podIp");
        dnsDomain = orElse(dnsDomain, "cluster.local");
        clusterId = orElse(clusterId, "Kubernetes");
        meshId = orElse(meshId, "cluster.local");
        istioVersion = orElse(istioVersion, ISTIO_VERSION);
        labels = Map.copyOf(labels == null ? Map.of() : labels);
        workloadName = orElse(workloadName, podName);
        interceptionMode = orElse(interceptionMode, "REDIRECT");
        if (!interceptionMode.equals("REDIRECT") && !interceptionMode.equals("TPROXY")
                && !interceptionMode.equals("NONE")) {
            throw new IllegalArgumentException("interceptionMode: " + interceptionMode
                    + " (expected: REDIRECT, TPROXY or NONE)");
        }
        serviceCluster = serviceCluster == null ? "" : serviceCluster;
        extraMetadata = java.util.Collections.unmodifiableMap(new LinkedHashMap<>(
                extraMetadata == null ? Map.of() : extraMetadata));
        id = id == null ? "" : id;
    }

    /** These options with Istio's sidecar id ({@link #id} empty). */
    public NodeOptions(String podName, String namespace, String podIp, String dnsDomain, String clusterId,
                       String meshId, String istioVersion, Map<String, String> labels, String workloadName,
                       String interceptionMode, String serviceCluster, Map<String, String> extraMetadata) {
        this(podName, namespace, podIp, dnsDomain, clusterId, meshId, istioVersion, labels, workloadName,
                interceptionMode, serviceCluster, extraMetadata, "");
    }

    /** The minimum: a pod's name, namespace and IP; everything else defaulted. */
    public static NodeOptions of(String podName, String namespace, String podIp) {
        return new NodeOptions(podName, namespace, podIp, null, null, null, null, null, null, null, null, null);
    }

    /** The same node with these labels. */
    public NodeOptions withLabels(Map<String, String> l) {
        return new NodeOptions(podName, namespace, podIp, dnsDomain, clusterId, meshId, istioVersion, l,
                workloadName, interceptionMode, serviceCluster, extraMetadata, id);
    }

    /**
     * The same node presented as the bootstrap's {@code node} says, as Envoy presents its local node to its xDS
     * server: its {@code id} (a generic xDS server keys what it serves by it) and its {@code cluster}, each where it
     * is not empty. {@code bootstrap} null: these options.
     */
    public NodeOptions withBootstrap(io.envoyproxy.envoy.config.core.v3.Node bootstrap) {
        if (bootstrap == null) {
            return this;
        }
        return new NodeOptions(podName, namespace, podIp, dnsDomain, clusterId, meshId, istioVersion, labels,
                workloadName, interceptionMode, orElse(bootstrap.getCluster(), serviceCluster), extraMetadata,
                orElse(bootstrap.getId(), id));
    }

    /**
     * The same node with the metadata {@code meta} (Istio's agent's {@code ISTIO_META_*} variables, their prefix
     * taken off) added to {@link #extraMetadata}: its {@code MESH_ID} is the node's mesh id; the fields the node sets
     * itself (its name, namespace, IPs, labels, workload, cluster, interception mode) keep their values.
     */
    public NodeOptions withIstioMeta(Map<String, String> meta) {
        Map<String, String> extra = new LinkedHashMap<>(extraMetadata);
        extra.putAll(meta);
        String mesh = meta.get("MESH_ID");
        return new NodeOptions(podName, namespace, podIp, dnsDomain, clusterId, mesh == null ? meshId : mesh,
                istioVersion, labels, workloadName, interceptionMode, serviceCluster, extra, id);
    }

    /** The node's {@link #id}, else Istio's sidecar node id: {@code sidecar~IP~POD.NAMESPACE~NAMESPACE.svc.DOMAIN}. */
    public String nodeId() {
        if (!id.isEmpty()) {
            return id;
        }
        return "sidecar~" + podIp + "~" + podName + "." + namespace + "~" + namespace + ".svc." + dnsDomain;
    }

    /** The node's cluster: {@link #serviceCluster}, else {@code <app label or workload>.<namespace>}. */
    public String cluster() {
        if (!serviceCluster.isEmpty()) {
            return serviceCluster;
        }
        String app = labels.getOrDefault("app", labels.getOrDefault("app.kubernetes.io/name", workloadName));
        return app + "." + namespace;
    }

    private static void nonEmpty(String v, String name) {
        if (v == null || v.isEmpty()) {
            throw new IllegalArgumentException(name + ": \"" + Objects.toString(v, "") + "\" (expected: not empty)");
        }
    }

    private static String orElse(String v, String dflt) {
        return v == null || v.isEmpty() ? dflt : v;
    }
}
