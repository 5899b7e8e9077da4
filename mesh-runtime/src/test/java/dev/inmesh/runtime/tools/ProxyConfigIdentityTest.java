package dev.inmesh.runtime.tools;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.runtime.upstream.TestCertificates;
import dev.inmesh.runtime.upstream.TestCertificates.Issued;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * proxy-config reads the dump of a proxy that has a workload identity directory (an ISTIO_MUTUAL cluster, whose TLS
 * names Istio's SDS secrets default and ROOTCA) as that proxy read its configuration.
 */
class ProxyConfigIdentityTest {
    private static final String SDS = """
            "sdsConfig": {"apiConfigSource": {"apiType": "GRPC", "transportApiVersion": "V3",
              "grpcServices": [{"envoyGrpc": {"clusterName": "sds-grpc"}}]}}""";
    /** A cluster as istiod writes one of a DestinationRule's ISTIO_MUTUAL. */
    private static final String CLUSTERS = """
            [{"@type": "type.googleapis.com/envoy.config.cluster.v3.Cluster",
              "name": "outbound|9080||reviews.default.svc.cluster.local", "type": "STATIC", "connectTimeout": "2s",
              "loadAssignment": {"clusterName": "outbound|9080||reviews.default.svc.cluster.local",
               "endpoints": [{"lbEndpoints": [{"endpoint": {"address": {"socketAddress": {
                "address": "10.244.0.7", "portValue": 9080}}}}]}]},
              "transportSocket": {"name": "envoy.transport_sockets.tls", "typedConfig": {
               "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
               "sni": "outbound_.9080_._.reviews.default.svc.cluster.local",
               "commonTlsContext": {"alpnProtocols": ["istio-peer-exchange", "istio"],
                "tlsCertificateSdsSecretConfigs": [{"name": "default", %s}],
                "combinedValidationContext": {"defaultValidationContext": {"matchSubjectAltNames": [
                  {"exact": "spiffe://cluster.local/ns/default/sa/bookinfo-reviews"}]},
                 "validationContextSdsSecretConfig": {"name": "ROOTCA", %s}}}}}}]
            """.formatted(SDS, SDS);

    @TempDir
    Path dir;

    @AfterEach
    void clearSetting() {
        System.clearProperty("inmesh.identity.dir");
    }

    private Path dump() throws Exception {
        Path file = dir.resolve("clusters.json");
        Files.writeString(file, CLUSTERS);
        return file;
    }

    @Test
    void anIstioMutualClusterIsShownWithTheWorkloadIdentityDirectoryOfTheSettings() throws Exception {
        Issued ca = TestCertificates.ca("mesh-ca");
        Issued own = TestCertificates.issue(ca, "productpage", List.of(),
                List.of("spiffe://cluster.local/ns/default/sa/bookinfo-productpage"));
        Path identity = TestCertificates.identityDirectory(dir, own, ca);
        System.setProperty("inmesh.identity.dir", identity.toString());
        ProxyConfigRun run = new ProxyConfigRun();
        assertEquals(0, run.run("cluster", "-f", dump().toString()), run.err());
        assertTrue(run.out().contains("reviews.default.svc.cluster.local     9080"), run.out());
    }

    @Test
    void withoutOneTheClusterIsLeftOutNamingTheSecretAndTheSetting() throws Exception {
        ProxyConfigRun run = new ProxyConfigRun();
        // the dump's one cluster left out: none to show (istioctl's exit status for none)
        assertEquals(1, run.run("cluster", "-f", dump().toString()), run.err());
        assertTrue(!run.out().contains("reviews"), run.out());
        assertTrue(run.err().contains("\"default\"") && run.err().contains("inmesh.identity.dir"), run.err());
    }

    @Test
    void aResourceInmeshCannotReadIsLeftOutOfTheTablesNamedOnTheStandardErrorAndTheRestShown() throws Exception {
        // a listener of a network filter Inmesh does not serve (redis_proxy), as in the dump of an Envoy that does
        Path file = dir.resolve("dump.json");
        Files.writeString(file, """
                {"configs": [{"@type": "type.googleapis.com/envoy.admin.v3.ListenersConfigDump",
                  "static_listeners": [
                   {"listener": {"name": "redis", "address": {"socket_address": {"address": "0.0.0.0",
                     "port_value": 6379}}, "filter_chains": [{"filters": [{"name": "envoy.filters.network.redis_proxy",
                     "typed_config": {"@type": "type.googleapis.com/google.protobuf.Struct"}}]}]}},
                   {"listener": {"name": "web", "address": {"socket_address": {"address": "0.0.0.0",
                     "port_value": 8080}}, "filter_chains": [{"filters": [{"name": "envoy.filters.network.tcp_proxy",
                     "typed_config": {"@type":
                      "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
                      "stat_prefix": "web", "cluster": "c"}}]}]}}]}]}
                """);
        ProxyConfigRun run = new ProxyConfigRun();
        assertEquals(0, run.run("listener", "-f", file.toString()), run.err());
        assertTrue(run.out().contains("8080"), run.out());
        assertTrue(!run.out().contains("6379"), run.out());
        assertTrue(run.err().startsWith("proxy-config: not shown, Inmesh cannot read it: ")
                && run.err().contains("\"redis\""), run.err());
    }
}
