package dev.inmesh.interception;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.inmesh.api.MeshOptions;
import java.util.Map;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

/** Where {@code inmesh proxy} takes its workload's identity from: its options, then settings, then Istio's env. */
class ProxyCommandIdentityTest {
    private static ProxyCommand parse(String... args) {
        ProxyCommand cmd = new ProxyCommand();
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
    void theHelpListsTheIdentityOptionsBesideTheStandardHelpAndVersionOptions() {
        String usage = new CommandLine(new ProxyCommand()).getUsageMessage();
        for (String o : new String[] {"--workload-name=NAME", "--namespace=NS", "--app=APP", "--app-version=VERSION",
            "--cluster-id=ID", "ISTIO_META_WORKLOAD_NAME", "POD_NAMESPACE", "--help", "--version"}) {
            org.junit.jupiter.api.Assertions.assertTrue(usage.contains(o), usage);
        }
    }
}
