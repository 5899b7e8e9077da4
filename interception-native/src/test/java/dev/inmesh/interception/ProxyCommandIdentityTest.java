package dev.inmesh.interception;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.MeshOptions;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/** Where {@code inmesh proxy} takes its workload's identity from: its options, then settings, then Istio's env. */
class ProxyCommandIdentityTest {
    /** No pod: the tests read no real {@code /etc/istio/pod} or {@code /var/run/secrets}, unless they name one. */
    @TempDir
    Path noPod;

    private ProxyCommand parse(String... args) {
        ProxyCommand cmd = new ProxyCommand();
        cmd.podInfo = noPod;
        cmd.secrets = noPod;
        new CommandLine(cmd).parseArgs(args);
        return cmd;
    }

    @Test
    void theCommandLineNamesTheWorkload() {
        ProxyCommand cmd = parse("-c", "x.yaml", "--workload-name", "legacy-v1", "--namespace", "shop", "--app",
                "legacy", "--app-version", "v1", "--cluster-id", "east");
        ProxyCommand.Identity id = cmd.identity(new MeshOptions(), Map.of("POD_NAMESPACE", "other"));
        assertEquals("legacy-v1", id.local().workload());
        assertEquals("shop", id.local().namespace());
        assertEquals("legacy", id.local().app());
        assertEquals("v1", id.local().version());
        assertEquals("east", id.clusterId());
        assertEquals("east", dev.inmesh.runtime.stats.PeerMetadata.decode(id.peerMetadata()).cluster());
        assertEquals("sidecar~127.0.0.1~legacy-v1.shop~shop.svc.cluster.local", id.peerMetadataId());
    }

    @Test
    void withoutOptionsIstiosInjectedEnvironmentNamesIt() {
        ProxyCommand.Identity id = parse("-c", "x.yaml").identity(new MeshOptions(),
                Map.of("ISTIO_META_WORKLOAD_NAME", "ratings-v1", "POD_NAMESPACE", "bookinfo",
                        "ISTIO_META_CLUSTER_ID", "west"));
        assertEquals("ratings-v1", id.local().workload());
        assertEquals("bookinfo", id.local().namespace());
        assertEquals("west", id.clusterId());
    }

    @Test
    void inmeshSettingsWinOverIstiosEnvironment() {
        MeshOptions o = new MeshOptions().setWorkloadName("reviews-v2").setNamespace("prod").setClusterId("c1");
        ProxyCommand.Identity id = parse("-c", "x.yaml").identity(o,
                Map.of("ISTIO_META_WORKLOAD_NAME", "ratings-v1", "POD_NAMESPACE", "bookinfo"));
        assertEquals("reviews-v2", id.local().workload());
        assertEquals("prod", id.local().namespace());
        assertEquals("c1", id.clusterId());
    }

    @Test
    void inAPodIstiosInjectorSetUpTheNodeIsThePodByItsIpNameAndLabels(@TempDir Path podInfo) throws Exception {
        // the downward API's file as the kubelet writes it (keys sorted, values quoted as Go quotes them)
        Files.writeString(podInfo.resolve("labels"), """
                app="reviews"
                pod-template-hash="5d8f9c7b4"
                security.istio.io/tlsMode="istio"
                service.istio.io/canonical-name="reviews-canonical"
                service.istio.io/canonical-revision="v2"
                team="a \\\"quoted\\\" \\u00e9l\\xc3\\xa9ment"
                version="v2"
                """);
        Map<String, String> env = Map.of("POD_NAME", "reviews-v2-5d8f9c7b4-x2k4p", "POD_NAMESPACE", "bookinfo",
                "INSTANCE_IP", "10.244.1.7", "ISTIO_META_WORKLOAD_NAME", "reviews-v2",
                "ISTIO_METAJSON_LABELS", "{\"app\": \"old\", \"tier\": \"web\"}");
        ProxyCommand cmd = parse("--xds-address", "istiod.istio-system.svc:15010");
        cmd.podInfo = podInfo;
        ProxyCommand.Identity id = cmd.identity(new MeshOptions(), env);
        assertEquals("reviews", id.local().app());
        assertEquals("v2", id.local().version());
        assertEquals("reviews-canonical", id.local().canonicalService());
        assertEquals("v2", id.local().canonicalRevision());
        assertEquals("sidecar~10.244.1.7~reviews-v2-5d8f9c7b4-x2k4p.bookinfo~bookinfo.svc.cluster.local",
                id.peerMetadataId());
        assertEquals("reviews-canonical", dev.inmesh.runtime.stats.PeerMetadata.decode(id.peerMetadata())
                .canonicalService());

        var ads = cmd.xds(new MeshOptions(), id, env);
        assertEquals("sidecar~10.244.1.7~reviews-v2-5d8f9c7b4-x2k4p.bookinfo~bookinfo.svc.cluster.local",
                ads.node().nodeId(), "istiod finds the pod, and so its Services' inbound listeners, by this IP");
        var meta = dev.inmesh.runtime.xds.ads.NodeBuilder.build(ads.node()).getMetadata().getFieldsMap();
        assertEquals("10.244.1.7", meta.get("INSTANCE_IPS").getStringValue());
        assertEquals("reviews-v2-5d8f9c7b4-x2k4p", meta.get("NAME").getStringValue());
        Map<String, String> labels = new java.util.TreeMap<>();
        meta.get("LABELS").getStructValue().getFieldsMap().forEach((k, v) -> labels.put(k, v.getStringValue()));
        assertEquals(Map.of("app", "reviews", "version", "v2", "tier", "web", "security.istio.io/tlsMode", "istio",
                "service.istio.io/canonical-name", "reviews-canonical", "service.istio.io/canonical-revision", "v2",
                "team", "a \"quoted\" \u00e9l\u00e9ment"), labels,
                "the file's labels over ISTIO_METAJSON_LABELS', without pod-template-hash");
        assertEquals("old", meta.get("app").getStringValue(), "ISTIO_METAJSON_*'s members, as the agent merges them");
        assertEquals("web", meta.get("tier").getStringValue());

        ProxyCommand named = parse("--app", "legacy", "--app-version", "v9");
        named.podInfo = podInfo;
        ProxyCommand.Identity own = named.identity(new MeshOptions().setPodIp("10.0.0.9").setPodName("mine"), env);
        assertEquals("legacy", own.local().app(), "the options win over the pod's labels");
        assertEquals("v9", own.local().version());
        assertEquals("sidecar~10.0.0.9~mine.bookinfo~bookinfo.svc.cluster.local", own.peerMetadataId());
    }

    @Test
    void olderInjectorsLabelsComeFromIstioMetajsonLabelsAndWhatCannotBeReadIsToldAndLeftOut(@TempDir Path dir) {
        List<String> warnings = new ArrayList<>();
        ProxyCommand cmd = parse("-c", "x.yaml");
        cmd.podInfo = dir; // no labels file
        cmd.warnings = warnings::add;
        ProxyCommand.Identity id = cmd.identity(new MeshOptions(), Map.of("ISTIO_METAJSON_LABELS",
                "{\"app\": \"details\", \"version\": \"v1\", \"replicas\": 3}", "POD_NAME", "details-v1-x"));
        assertEquals("details", id.local().app());
        assertEquals("v1", id.local().version());
        assertEquals("details", id.local().canonicalService());
        assertEquals(Map.of("app", "details", "version", "v1"), id.labels());
        assertEquals(Map.of("app", "details", "version", "v1"), cmd.istioMeta(Map.of("ISTIO_METAJSON_LABELS",
                "{\"app\": \"details\", \"version\": \"v1\", \"replicas\": 3}")), "the labels' members, once told");
        cmd.xdsAddress = "127.0.0.1:15010";
        var unlabelled = cmd.xds(new MeshOptions(), cmd.identity(new MeshOptions(), Map.of()), Map.of()).node();
        assertEquals(Map.of(), unlabelled.labels(), "a pod without app or version labels: no unknown ones sent");
        assertEquals(List.of("ISTIO_METAJSON_LABELS: replicas is not a string; left out"), warnings);

        warnings.clear();
        assertEquals(Map.of(), cmd.istioMeta(Map.of("ISTIO_METAJSON_ANNOTATIONS", "not json")));
        assertEquals(List.of("ISTIO_METAJSON_ANNOTATIONS is not a JSON object; left out: not json"), warnings);
    }

    @Test
    void inAnIstioSidecarContainerTheControlPlaneAndCaAreTheOnesIstiosInjectorNamed(@TempDir Path secrets)
            throws Exception {
        Files.createDirectories(secrets.resolve("istio"));
        Files.createDirectories(secrets.resolve("tokens"));
        Files.writeString(secrets.resolve("istio/root-cert.pem"), "root");
        Files.writeString(secrets.resolve("tokens/istio-token"), "token");
        Map<String, String> env = Map.of("POD_NAMESPACE", "bookinfo", "CA_ADDR", "istiod-ca.istio-system.svc:15012",
                "PROXY_CONFIG", "{\"discoveryAddress\":\"istiod.istio-system.svc:15012\","
                        + "\"proxyMetadata\":{\"ISTIO_META_DNS_CAPTURE\":\"true\"}}");
        ProxyCommand cmd = parse("--identity-dir", secrets.resolve("certs").toString(), "--identity-ca");
        cmd.secrets = secrets;
        cmd.podInfo = secrets; // no labels file
        MeshOptions o = new MeshOptions();
        var ads = cmd.xds(o, cmd.identity(o, env), env);
        var server = ads.servers().get(0);
        assertEquals("istiod.istio-system.svc", server.host());
        assertEquals(15012, server.port());
        assertEquals(secrets.resolve("istio/root-cert.pem"), server.caFile());
        assertEquals(secrets.resolve("tokens/istio-token"), server.tokenFile());
        var ca = cmd.identityCa(o, cmd.identity(o, env), env);
        assertEquals("istiod-ca.istio-system.svc", ca.ca().host(), "CA_ADDR");
        assertEquals(secrets.resolve("tokens/istio-token"), ca.ca().tokenFile());
        assertEquals("true", dev.inmesh.runtime.xds.ads.NodeBuilder.build(ads.node()).getMetadata().getFieldsMap()
                .get("DNS_CAPTURE").getStringValue(), "PROXY_CONFIG's proxyMetadata, as the agent takes it");

        ProxyCommand own = parse("--xds-address", "127.0.0.1:15010");
        own.secrets = secrets;
        own.podInfo = secrets;
        var plain = own.xds(new MeshOptions(), own.identity(new MeshOptions(), env), env).servers().get(0);
        assertEquals(15010, plain.port(), "the option wins over PROXY_CONFIG");
        assertEquals(null, plain.tokenFile(), "the pod's token goes to istiod's TLS port only");

        Files.createDirectories(secrets.resolve("kubernetes.io/serviceaccount"));
        Files.writeString(secrets.resolve("kubernetes.io/serviceaccount/token"), "sa");
        Map<String, String> defaults = Map.of("PROXY_CONFIG", "{}", "JWT_POLICY", "first-party-jwt",
                "TRUST_DOMAIN", "corp.example", "SERVICE_ACCOUNT", "reviews");
        ProxyCommand injected = parse("--identity-dir", secrets.resolve("certs").toString(), "--identity-ca");
        injected.secrets = secrets;
        injected.podInfo = secrets;
        MeshOptions d = new MeshOptions();
        var istiod = injected.xds(d, injected.identity(d, defaults), defaults).servers().get(0);
        assertEquals("istiod.istio-system.svc:15012", istiod.host() + ":" + istiod.port(),
                "Istio's default discoveryAddress, which the injector leaves out of PROXY_CONFIG");
        assertEquals(secrets.resolve("kubernetes.io/serviceaccount/token"), istiod.tokenFile(), "first-party-jwt");
        assertEquals("spiffe://corp.example/ns/default/sa/reviews",
                injected.identityCa(d, injected.identity(d, defaults), defaults).spiffeId(), "TRUST_DOMAIN");

        List<String> warnings = new ArrayList<>();
        ProxyCommand bad = parse();
        bad.podInfo = secrets;
        bad.warnings = warnings::add;
        for (String broken : new String[] {"{discoveryAddress: [", "[\"istiod:15012\"]", "istiod:15012"}) {
            warnings.clear();
            Map<String, String> env2 = Map.of("PROXY_CONFIG", broken);
            assertEquals(null, bad.xds(new MeshOptions(), bad.identity(new MeshOptions(), env2), env2), broken);
            assertEquals(1, warnings.size(), warnings.toString());
            assertTrue(warnings.get(0).startsWith("PROXY_CONFIG is not a YAML or JSON ProxyConfig"), warnings.get(0));
        }
    }

    @Test
    void aProxyConfigInYamlNamesTheControlPlaneAsIstiosAgentReadsIt(@TempDir Path podInfo) {
        List<String> warnings = new ArrayList<>();
        ProxyCommand cmd = parse();
        cmd.podInfo = podInfo;
        cmd.secrets = podInfo;
        cmd.warnings = warnings::add;
        Map<String, String> env = Map.of("PROXY_CONFIG", """
                discoveryAddress: istiod-canary.istio-system.svc:15012
                proxyMetadata:
                  ISTIO_META_DNS_CAPTURE: "true"
                """);
        MeshOptions o = new MeshOptions();
        var ads = cmd.xds(o, cmd.identity(o, env), env);
        assertEquals("istiod-canary.istio-system.svc:15012", ads.servers().get(0).address());
        assertEquals("true", dev.inmesh.runtime.xds.ads.NodeBuilder.build(ads.node()).getMetadata().getFieldsMap()
                .get("DNS_CAPTURE").getStringValue());
        assertEquals(List.of(), warnings);
    }

    @Test
    void theHelpListsTheIdentityOptionsBesideTheStandardHelpAndVersionOptions() {
        String usage = new CommandLine(new ProxyCommand()).getUsageMessage();
        for (String o : new String[] {"--workload-name=NAME", "--namespace=NS", "--app=APP", "--app-version=VERSION",
            "--cluster-id=ID", "ISTIO_META_WORKLOAD_NAME", "POD_NAMESPACE", "--help", "--version"}) {
            org.junit.jupiter.api.Assertions.assertTrue(usage.contains(o), usage);
        }
    }

    @Test
    void theIdentityCaOptionsNameTheDirectoryAndTheCaAndTheEnvironmentTheServiceAccount() {
        ProxyCommand cmd = parse("-c", "x.yaml", "--namespace", "shop", "--identity-dir", "/etc/istio/certs",
                "--identity-ca", "--ca-address", "istiod.istio-system.svc:15012");
        MeshOptions o = new MeshOptions();
        dev.inmesh.runtime.identity.IstioCaOptions ca = cmd.identityCa(o, cmd.identity(o, Map.of()),
                Map.of("SERVICE_ACCOUNT", "cart", "POD_NAMESPACE", "other"));
        assertEquals("spiffe://cluster.local/ns/shop/sa/cart", ca.spiffeId());
        assertEquals("istiod.istio-system.svc:15012", ca.ca().address());
        assertEquals(java.nio.file.Path.of("/etc/istio/certs"), ca.dir());
        ProxyCommand off = parse("-c", "x.yaml", "--identity-dir", "/etc/istio/certs");
        assertEquals(null, off.identityCa(new MeshOptions(), off.identity(new MeshOptions(), Map.of()), Map.of()));
    }

    @Test
    void theProxyFillsTheIdentityDirectoryFromTheCaBeforeItStarts(@org.junit.jupiter.api.io.TempDir
                                                                   java.nio.file.Path tmp) throws Exception {
        try (dev.inmesh.runtime.identity.TestIstioCa ca = new dev.inmesh.runtime.identity.TestIstioCa(null, null,
                null)) {
            ProxyCommand cmd = parse("-c", "x.yaml", "--namespace", "shop", "--identity-dir", tmp.toString(),
                    "--identity-ca", "--ca-address", "127.0.0.1:" + ca.port());
            MeshOptions o = new MeshOptions();
            try (AutoCloseable stop = ProxyCommand.startIdentityCa(cmd.identityCa(o, cmd.identity(o, Map.of()),
                    Map.of("SERVICE_ACCOUNT", "cart")))) {
                assertTrue(java.nio.file.Files.readString(tmp.resolve("cert-chain.pem")).contains("BEGIN CERTIFICATE"));
                assertTrue(java.nio.file.Files.exists(tmp.resolve("key.pem")));
                assertEquals(1, ca.calls().size());
            }
        }
    }

    @Test
    void theProxyDoesNotStartWhenItsIdentityCannotBeHad() throws Exception {
        java.io.ByteArrayOutputStream err = new java.io.ByteArrayOutputStream();
        java.io.PrintStream saved = System.err;
        System.setErr(new java.io.PrintStream(err, true, java.nio.charset.StandardCharsets.UTF_8));
        int code;
        try {
            ProxyCommand c = parse("-c", "x.yaml", "--no-admin", "--identity-ca", "--xds-address", "127.0.0.1:15010");
            code = c.call();
        } finally {
            System.setErr(saved);
        }
        assertEquals(1, code);
        String printed = err.toString(java.nio.charset.StandardCharsets.UTF_8);
        assertTrue(printed.contains("inmesh.identity.ca.enabled: true needs inmesh.identity.dir"), printed);
    }

    @Test
    void theIdentityDirectoryIsTheOptionsElseTheSettings() {
        MeshOptions o = new MeshOptions().setIdentityDir("/etc/certs");
        assertEquals(java.nio.file.Path.of("/var/run/identity"), parse("-c", "x.yaml", "--identity-dir",
                "/var/run/identity").workloadIdentity(o).dir());
        assertEquals(java.nio.file.Path.of("/etc/certs"), parse("-c", "x.yaml").workloadIdentity(o).dir());
        org.junit.jupiter.api.Assertions.assertNull(parse("-c", "x.yaml").workloadIdentity(new MeshOptions()));
    }

    /** A bootstrap as Istio's agent writes envoy-rev.json: the sidecar's node, its identity in the metadata. */
    static final String BOOTSTRAP = dev.inmesh.runtime.mesh.BootstrapNodes.REVIEWS_V2;

    @Test
    void withoutOptionsOrVariablesTheBootstrapsNodeNamesTheWorkloadItsMetricsAndItsMetadataExchange(
            @TempDir Path dir) throws Exception {
        Path bootstrap = Files.writeString(dir.resolve("envoy-rev.yaml"), BOOTSTRAP);
        ProxyCommand cmd = parse("-c", bootstrap.toString());
        ProxyCommand.Identity id = cmd.identity(new MeshOptions(), Map.of());
        assertEquals("reviews-v2", id.local().workload());
        assertEquals("shop", id.local().namespace());
        assertEquals("reviews", id.local().app());
        assertEquals("v2", id.local().version());
        assertEquals("reviews", id.local().canonicalService());
        assertEquals("v2", id.local().canonicalRevision());
        assertEquals("cl-east", id.clusterId());
        assertEquals("1.26.1", id.istioVersion());
        assertEquals(dev.inmesh.runtime.mesh.BootstrapNodes.REVIEWS_V2_ID, id.peerMetadataId(),
                "x-envoy-peer-metadata-id is the node's id, as Istio's sidecar sends it");
        var sent = dev.inmesh.runtime.stats.PeerMetadata.decode(id.peerMetadata());
        assertEquals(new dev.inmesh.runtime.stats.WorkloadInfo("reviews-v2", "shop", "reviews", "v2", "reviews",
                "v2", "cl-east"), sent, "what the destination labels the caller with");
        var header = com.google.protobuf.Struct.parseFrom(java.util.Base64.getDecoder().decode(id.peerMetadata()));
        assertEquals("reviews-v2-7f9c-abcde", header.getFieldsOrThrow("NAME").getStringValue(),
                "NAME is the pod, the node's NAME, as in Istio's header");

        // the metrics: source_* of an outbound request, and istio_build's tag
        var registry = new io.micrometer.prometheusmetrics.PrometheusMeterRegistry(
                io.micrometer.prometheusmetrics.PrometheusConfig.DEFAULT);
        ProxyCommand.metrics(registry, id).record(new dev.inmesh.runtime.stats.StreamInfo(
                dev.inmesh.runtime.stats.StreamInfo.Direction.OUTBOUND, java.time.Instant.now(), "GET", "/",
                "HTTP/1.1", 200, java.util.Set.of(), "via_upstream", 0, 2, 1, 1, "r", "ratings:9080", "curl", null,
                "10.1.2.4:9080", "outbound|9080||ratings.shop.svc.cluster.local", null, null, null, null, null, 1,
                dev.inmesh.runtime.stats.WorkloadInfo.UNKNOWN, "ratings.shop.svc.cluster.local", "ratings", "shop",
                null));
        String scrape = registry.scrape();
        assertTrue(scrape.contains("istio_build{component=\"proxy\",tag=\"1.26.1\"}"), scrape);
        String requests = scrape.lines().filter(l -> l.startsWith("istio_requests_total{")).findFirst().orElseThrow();
        for (String label : List.of("source_workload=\"reviews-v2\"", "source_workload_namespace=\"shop\"",
                "source_cluster=\"cl-east\"", "source_canonical_service=\"reviews\"",
                "source_canonical_revision=\"v2\"", "source_app=\"reviews\"", "source_version=\"v2\"")) {
            assertTrue(requests.contains(label), label + " in " + requests);
        }

        // over a control plane, the node it presents is the same workload's
        cmd.xdsAddress = "127.0.0.1:15010";
        var node = cmd.xds(new MeshOptions(), id, Map.of()).node();
        assertEquals(dev.inmesh.runtime.mesh.BootstrapNodes.REVIEWS_V2_ID, node.nodeId());
        assertEquals("reviews-v2", node.workloadName());
        assertEquals("cl-east", node.clusterId());
    }

    @Test
    void aControlPlaneIsPresentedTheBootstrapNodesOwnIdAndCluster(@TempDir Path dir) throws Exception {
        Path bootstrap = Files.writeString(dir.resolve("envoy.yaml"), BOOTSTRAP
                .replace(dev.inmesh.runtime.mesh.BootstrapNodes.REVIEWS_V2_ID, "edge-proxy-7")
                .replace("cluster: reviews.shop", "cluster: edge"));
        ProxyCommand cmd = parse("-c", bootstrap.toString(), "--xds-address", "127.0.0.1:15010");
        ProxyCommand.Identity id = cmd.identity(new MeshOptions(), Map.of());
        var node = dev.inmesh.runtime.xds.ads.NodeBuilder.build(cmd.xds(new MeshOptions(), id, Map.of()).node());
        assertEquals("edge-proxy-7", node.getId(), "as Envoy presents its bootstrap node, by which a server keys it");
        assertEquals("edge", node.getCluster());
        assertEquals("edge-proxy-7", id.peerMetadataId());
        assertEquals("reviews-v2", node.getMetadata().getFieldsOrThrow("WORKLOAD_NAME").getStringValue());
    }

    @Test
    void theOptionsAndInmeshSettingsWinOverTheBootstrapsNodeWhichWinsOverIstiosEnvironment(@TempDir Path dir)
            throws Exception {
        Path bootstrap = Files.writeString(dir.resolve("envoy-rev.yaml"), BOOTSTRAP);
        Map<String, String> env = Map.of("ISTIO_META_WORKLOAD_NAME", "ratings-v1", "POD_NAMESPACE", "bookinfo",
                "ISTIO_META_CLUSTER_ID", "west", "POD_NAME", "ratings-v1-x", "INSTANCE_IP", "10.9.9.9");
        ProxyCommand.Identity fromNode = parse("-c", bootstrap.toString()).identity(new MeshOptions(), env);
        assertEquals("reviews-v2", fromNode.local().workload());
        assertEquals("shop", fromNode.local().namespace());
        assertEquals("cl-east", fromNode.clusterId());

        ProxyCommand.Identity flagged = parse("-c", bootstrap.toString(), "--workload-name", "legacy-v1",
                "--namespace", "ops", "--app", "legacy", "--app-version", "v9", "--cluster-id", "c9")
                .identity(new MeshOptions(), env);
        assertEquals(new dev.inmesh.runtime.stats.WorkloadInfo("legacy-v1", "ops", "legacy", "v9", "reviews",
                "v2", null), flagged.local(), "the options win; the node's canonical labels stay the pod's");
        assertEquals("c9", flagged.clusterId());

        ProxyCommand.Identity set = parse("-c", bootstrap.toString()).identity(
                new MeshOptions().setWorkloadName("mine").setNamespace("prod"), env);
        assertEquals("mine", set.local().workload());
        assertEquals("prod", set.local().namespace());
        assertEquals("cl-east", set.clusterId());

        ProxyCommand.Identity none = parse("-c", dir.resolve("missing.yaml").toString())
                .identity(new MeshOptions(), Map.of());
        assertEquals(dev.inmesh.runtime.xds.ads.NodeOptions.ISTIO_VERSION, none.istioVersion(),
                "without a node, the version Inmesh claims");
    }
}
