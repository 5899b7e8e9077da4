package dev.inmesh.interception;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

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
}
