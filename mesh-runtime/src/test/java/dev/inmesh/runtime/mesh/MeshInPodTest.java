package dev.inmesh.runtime.mesh;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.MeshOptions;
import dev.inmesh.runtime.stats.WorkloadInfo;
import dev.inmesh.runtime.xds.ads.NodeBuilder;
import io.envoyproxy.envoy.config.core.v3.Node;
import io.smallrye.config.EnvConfigSource;
import io.smallrye.config.SmallRyeConfigBuilder;
import io.vertx.core.Vertx;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The in-JVM mesh in a Kubernetes pod without a sidecar reads the pod as Istio's agent (and inmesh proxy) reads it. */
class MeshInPodTest {
    private final Vertx vertx = Vertx.vertx();
    private final List<String> warnings = new ArrayList<>();

    @TempDir
    Path podInfo;

    @TempDir
    Path secrets;

    @AfterEach
    void close() {
        vertx.close().await();
    }

    /** What a pod's Deployment gives its container through the downward API, as Istio's injector would. */
    private static final Map<String, String> POD = Map.of("POD_NAME", "reviews-v2-5d8f9c7b4-x2k4p",
            "POD_NAMESPACE", "bookinfo", "INSTANCE_IP", "10.244.1.7",
            "ISTIO_METAJSON_LABELS", "{\"app\": \"old\", \"tier\": \"web\"}",
            "ISTIO_METAJSON_ANNOTATIONS", "{\"sidecar.istio.io/inject\": \"false\"}");

    private DefaultMesh mesh(MeshOptions o, Map<String, String> env) {
        return new DefaultMesh(vertx, PodInfo.InPod.read(o, env, podInfo, secrets, warnings::add));
    }

    private static Map<String, String> labels(Node node) {
        Map<String, String> labels = new TreeMap<>();
        node.getMetadata().getFieldsMap().get("LABELS").getStructValue().getFieldsMap()
                .forEach((k, v) -> labels.put(k, v.getStringValue()));
        return labels;
    }

    @Test
    void inAPodTheNodeIsThePodByItsIpNameNamespaceAndLabelsAndTheMetricsNameItsAppAndVersion() throws Exception {
        Files.writeString(podInfo.resolve("labels"), """
                app="reviews"
                pod-template-hash="5d8f9c7b4"
                service.istio.io/canonical-name="reviews-canonical"
                version="v2"
                """);
        DefaultMesh mesh = mesh(new MeshOptions().setXdsAddress("istiod.istio-system.svc:15010"), POD);
        String id = "sidecar~10.244.1.7~reviews-v2-5d8f9c7b4-x2k4p.bookinfo~bookinfo.svc.cluster.local";
        assertEquals(id, mesh.nodeId(), "istiod finds the pod, and so its Services, by this IP");
        Node node = NodeBuilder.build(mesh.adsOptions().node());
        assertEquals(id, node.getId(), "one node id, for the admin server and for istiod");
        assertEquals("10.244.1.7", node.getMetadata().getFieldsMap().get("INSTANCE_IPS").getStringValue());
        assertEquals(Map.of("app", "reviews", "version", "v2", "tier", "web",
                "service.istio.io/canonical-name", "reviews-canonical"), labels(node),
                "the file's labels over ISTIO_METAJSON_LABELS', without pod-template-hash");
        assertEquals("false", node.getMetadata().getFieldsMap().get("sidecar.istio.io/inject").getStringValue(),
                "ISTIO_METAJSON_*'s members, as the agent merges them");
        WorkloadInfo local = mesh.workload();
        assertEquals("reviews", local.app());
        assertEquals("v2", local.version());
        assertEquals("bookinfo", local.namespace());
        assertEquals("reviews-canonical", local.canonicalService());
        assertEquals("10.244.1.7", mesh.options().getPodIp(), "the source address of the outbound requests too");
        assertEquals(List.of(), warnings);
    }

    @Test
    void istiosMetadataVariablesGoIntoTheNodeAndNameTheWorkloadAndClusterAsForIstiosAgent() throws Exception {
        Map<String, String> env = new java.util.HashMap<>(POD);
        env.putAll(Map.of("ISTIO_META_WORKLOAD_NAME", "reviews-v2", "ISTIO_META_CLUSTER_ID", "east",
                "ISTIO_META_NETWORK", "network-east", "ISTIO_META_MESH_ID", "mesh1"));
        DefaultMesh mesh = mesh(new MeshOptions().setApp("reviews").setXdsAddress("127.0.0.1:15010"), env);
        Node node = NodeBuilder.build(mesh.adsOptions().node());
        var meta = node.getMetadata().getFieldsMap();
        assertEquals("network-east", meta.get("NETWORK").getStringValue(), "istiod's endpoints per network");
        assertEquals("mesh1", meta.get("MESH_ID").getStringValue());
        assertEquals("east", meta.get("CLUSTER_ID").getStringValue());
        assertEquals("reviews-v2", meta.get("WORKLOAD_NAME").getStringValue());
        assertEquals("reviews-v2", mesh.workload().workload(), "the source_workload of the metrics too");
        assertEquals("east", mesh.options().getClusterId(), "the source_cluster of the metrics too");
        // a setting wins
        DefaultMesh own = mesh(new MeshOptions().setWorkloadName("mine").setClusterId("west")
                .setXdsAddress("127.0.0.1:15010"), env);
        assertEquals("mine", own.workload().workload());
        assertEquals("west", NodeBuilder.build(own.adsOptions().node()).getMetadata().getFieldsMap()
                .get("CLUSTER_ID").getStringValue());
    }

    @Test
    void theSettingsWinOverThePodThenInmeshVariablesOverIstios() throws Exception {
        Files.writeString(podInfo.resolve("labels"), "app=\"reviews\"\nversion=\"v2\"\n");
        DefaultMesh own = mesh(new MeshOptions().setPodName("mine").setPodIp("10.0.0.9").setNamespace("shop")
                .setApp("legacy").setVersion("v9").setXdsAddress("127.0.0.1:15010"), POD);
        assertEquals("sidecar~10.0.0.9~mine.shop~shop.svc.cluster.local", own.nodeId());
        assertEquals("legacy", own.workload().app());
        assertEquals("v9", own.workload().version());
        assertEquals(Map.of("app", "legacy", "version", "v9", "tier", "web"), labels(NodeBuilder.build(
                own.adsOptions().node())), "the app and version the workload goes by, with the pod's other labels");

        // INMESH_* variables are settings: over Istio's
        MeshOptions settings = MeshSettings.from(new SmallRyeConfigBuilder().withSources(new EnvConfigSource(
                Map.of("INMESH_POD_NAME", "named", "INMESH_POD_IP", "10.0.0.8", "INMESH_APP", "ratings"), 300))
                .build());
        DefaultMesh inmesh = mesh(settings, POD);
        assertEquals("sidecar~10.0.0.8~named.bookinfo~bookinfo.svc.cluster.local", inmesh.nodeId());
        assertEquals("ratings", inmesh.workload().app());
        assertEquals("v2", inmesh.workload().version(), "the pod's version label, not set otherwise");
    }

    @Test
    void outsideAPodNothingChanges() {
        Map<String, String> notAPod = Map.of("PROXY_CONFIG", "{}", "HOME", "/root");
        DefaultMesh mesh = mesh(new MeshOptions().setWorkloadName("reviews-v1").setApp("reviews"), notAPod);
        assertEquals("sidecar~127.0.0.1~reviews-v1.default~default.svc.cluster.local", mesh.nodeId());
        assertEquals("127.0.0.1", mesh.options().getPodIp());
        assertEquals("", mesh.options().getPodName());
        assertEquals("default", mesh.options().getNamespace());
        assertEquals("", mesh.options().getVersion());
        assertNull(mesh.options().getXdsAddress(), "no control plane asked for: none reached, whatever the pod says");
        assertTrue(mesh.isReady(), "the embedded default, with no configuration source, as before");

        DefaultMesh unnamed = mesh(new MeshOptions().setXdsAddress("127.0.0.1:15010"), Map.of());
        assertEquals("sidecar~127.0.0.1~inmesh.default~default.svc.cluster.local", unnamed.nodeId());
        Node node = NodeBuilder.build(unnamed.adsOptions().node());
        assertEquals(unnamed.nodeId(), node.getId(), "the admin server's node is the one istiod is told");
        assertEquals(Map.of(), labels(node));
        assertNull(unnamed.options().getXdsCaFile());
        assertEquals(List.of(), warnings);
    }

    @Test
    void onIstiodsTlsPortTheMeshTrustsTheMountedRootCertificateAndSendsTheMountedTokenAsIstiosAgent() throws Exception {
        MeshOptions istiod = new MeshOptions().setXdsAddress("istiod.istio-system.svc:15012");
        DefaultMesh none = mesh(istiod, POD);
        assertNull(none.adsOptions().servers().get(0).caFile(), "no files mounted: none taken");
        assertNull(none.adsOptions().servers().get(0).tokenFile());

        Files.createDirectories(secrets.resolve("istio"));
        Files.createDirectories(secrets.resolve("tokens"));
        Files.writeString(secrets.resolve("istio/root-cert.pem"), "root");
        Files.writeString(secrets.resolve("tokens/istio-token"), "token");
        var server = mesh(istiod, POD).adsOptions().servers().get(0);
        assertEquals(secrets.resolve("istio/root-cert.pem"), server.caFile());
        assertEquals(secrets.resolve("tokens/istio-token"), server.tokenFile());
        MeshOptions ca = mesh(new MeshOptions(istiod).setIdentityDir("/certs").setIdentityCaEnabled(true), POD)
                .options();
        assertEquals(secrets.resolve("tokens/istio-token"), dev.inmesh.runtime.identity.IstioCaOptions.fromSettings(
                ca, null, "Kubernetes", POD).ca().tokenFile(), "Istio's CA, on the same port, reached the same way");

        var own = mesh(new MeshOptions(istiod).setXdsCaFile("/etc/ca.pem").setXdsTokenFile("/etc/token"), POD)
                .adsOptions().servers().get(0);
        assertEquals(Path.of("/etc/ca.pem"), own.caFile(), "the settings win");
        assertEquals(Path.of("/etc/token"), own.tokenFile());
        var plain = mesh(new MeshOptions().setXdsAddress("istiod.istio-system.svc:15010"), POD).adsOptions()
                .servers().get(0);
        assertNull(plain.caFile(), "istiod's plaintext port: no TLS");
        assertNull(plain.tokenFile(), "the pod's token goes to istiod's TLS port only");
        assertNull(mesh(new MeshOptions(), POD).options().getXdsCaFile(), "no xDS server: none reached");
        assertNull(mesh(new MeshOptions(), POD).options().getXdsAddress());
    }

    @Test
    void istiosCaIsTheOneThePodNamesInTheTrustDomainItNamesUnlessTheSettingsNameThem() {
        Map<String, String> env = Map.of("POD_NAMESPACE", "bookinfo", "SERVICE_ACCOUNT", "reviews",
                "CA_ADDR", "istiod-ca.istio-system.svc:15012", "TRUST_DOMAIN", "corp.example");
        MeshOptions ca = new MeshOptions().setIdentityDir("/certs").setIdentityCaEnabled(true)
                .setXdsAddress("istiod.istio-system.svc:15010");
        var pod = dev.inmesh.runtime.identity.IstioCaOptions.fromSettings(mesh(ca, env).options(), null,
                "Kubernetes", env);
        assertEquals("istiod-ca.istio-system.svc:15012", pod.ca().address(), "CA_ADDR");
        assertEquals("spiffe://corp.example/ns/bookinfo/sa/reviews", pod.spiffeId(), "TRUST_DOMAIN");

        var own = dev.inmesh.runtime.identity.IstioCaOptions.fromSettings(mesh(new MeshOptions(ca)
                .setIdentityCaAddress("127.0.0.1:15012").setIdentityTrustDomain("mine.example"), env).options(),
                null, "Kubernetes", env);
        assertEquals("127.0.0.1:15012", own.ca().address(), "the settings win");
        assertEquals("spiffe://mine.example/ns/bookinfo/sa/reviews", own.spiffeId());
        MeshOptions outside = mesh(new MeshOptions(), Map.of()).options();
        assertNull(outside.getIdentityCaAddress());
        assertEquals("cluster.local", outside.getIdentityTrustDomain());
    }

    @Test
    void aBootstrapsNodeNamesTheWorkloadOfTheMetricsAndMetadataExchangeWhereTheSettingsDoNot() throws Exception {
        Path bootstrap = Files.writeString(secrets.resolve("envoy-rev.yaml"), BootstrapNodes.REVIEWS_V2);
        Map<String, String> env = Map.of("POD_NAMESPACE", "bookinfo", "ISTIO_META_WORKLOAD_NAME", "ratings-v1");
        DefaultMesh mesh = mesh(new MeshOptions().setConfigFile(bootstrap.toString()), env);
        assertEquals(new WorkloadInfo("reviews-v2", "shop", "reviews", "v2", "reviews", "v2", null),
                mesh.workload(), "the node's metadata over Istio's environment");
        assertEquals("cl-east", mesh.options().getClusterId());
        assertEquals(BootstrapNodes.REVIEWS_V2_ID, mesh.nodeId());
        assertEquals(new WorkloadInfo("reviews-v2", "shop", "reviews", "v2", "reviews", "v2", "cl-east"),
                dev.inmesh.runtime.stats.PeerMetadata.decode(mesh.peerMetadata()));
        String scrape = mesh.registry().scrape();
        assertTrue(scrape.contains("istio_build{component=\"proxy\",tag=\"1.26.1\"}"), scrape);

        DefaultMesh own = mesh(new MeshOptions().setConfigFile(bootstrap.toString()).setWorkloadName("mine")
                .setClusterId("west"), env);
        assertEquals("mine", own.workload().workload(), "a setting wins over the node");
        assertEquals("shop", own.workload().namespace());
        assertEquals("west", own.options().getClusterId());
        assertEquals(List.of(), warnings);
    }

    @Test
    void aControlPlaneIsPresentedTheBootstrapNodesIdAndClusterAsEnvoyPresentsItsLocalNode() throws Exception {
        // a generic xDS server (java-control-plane's snapshot cache, say) keys what it serves by the node's id
        Path bootstrap = Files.writeString(secrets.resolve("envoy-rev.yaml"), BootstrapNodes.REVIEWS_V2
                .replace(BootstrapNodes.REVIEWS_V2_ID, "edge-proxy-7"));
        DefaultMesh mesh = mesh(new MeshOptions().setConfigFile(bootstrap.toString())
                .setXdsAddress("127.0.0.1:15010"), Map.of());
        Node node = NodeBuilder.build(mesh.adsOptions().node());
        assertEquals("edge-proxy-7", node.getId(), "the bootstrap's id, not a sidecar id made of the pod");
        assertEquals("edge-proxy-7", mesh.nodeId(), "one node id, for the admin server and for the control plane");
        assertEquals("reviews.shop", node.getCluster());
        assertEquals("reviews-v2-7f9c-abcde", node.getMetadata().getFieldsMap().get("NAME").getStringValue());
        // its spans' local endpoint too, as Envoy's tracer takes its local node (the standalone proxy's already did)
        assertEquals("reviews.shop", mesh.tracing().local().serviceName());
        assertEquals("edge-proxy-7", mesh.tracing().local().nodeId());
        DefaultMesh edge = mesh(new MeshOptions().setConfigFile(Files.writeString(secrets.resolve("edge.yaml"),
                BootstrapNodes.REVIEWS_V2.replace("cluster: reviews.shop", "cluster: edge")).toString()), Map.of());
        assertEquals("edge", edge.tracing().local().serviceName());
        // without a bootstrap id, Istio's sidecar id of the pod
        Path noId = Files.writeString(secrets.resolve("envoy-rev.yaml"), BootstrapNodes.REVIEWS_V2
                .replace("  id: " + BootstrapNodes.REVIEWS_V2_ID + "\n", ""));
        assertEquals("sidecar~10.1.2.3~reviews-v2-7f9c-abcde.shop~shop.svc.cluster.local", NodeBuilder.build(
                mesh(new MeshOptions().setConfigFile(noId.toString()).setXdsAddress("127.0.0.1:15010"), Map.of())
                        .adsOptions().node()).getId());
    }
}
