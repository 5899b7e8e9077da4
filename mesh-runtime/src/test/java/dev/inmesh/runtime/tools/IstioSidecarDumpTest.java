package dev.inmesh.runtime.tools;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.inmesh.api.config.cluster.Cluster;
import dev.inmesh.api.config.listener.HttpConnectionManager;
import dev.inmesh.runtime.snapshot.MeshSnapshot;
import dev.inmesh.runtime.snapshot.SnapshotCompiler;
import dev.inmesh.runtime.xds.EnvoyConfigReader;
import dev.inmesh.runtime.xds.EnvoyJson;
import dev.inmesh.runtime.xds.ResourceBundle;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * The {@code /config_dump?include_eds} of a bookinfo productpage sidecar on Istio 1.24 (Envoy 1.32), in Envoy's exact
 * shape: Istio's whole bootstrap, the agent's static clusters and their endpoints (Unix sockets), a listener being
 * replaced (active and draining), one draining alone, one warming, one rejected, a cluster warming beside its active
 * version and a new one warming alone, the connection managers' inline route configurations in
 * {@code static_route_configs}, two ECDS dumps, an empty scoped routes dump, and secrets (the key redacted, one
 * warming). It loads, compiles and prints as the real one does.
 */
class IstioSidecarDumpTest {
    static final Path DUMP = Path.of("src/test/resources/istio/config_dump_sidecar_1_24.json");
    static final String REVIEWS = "outbound|9080||reviews.default.svc.cluster.local";

    @Test
    void theActiveAndStaticResourcesLoadAndTheWarmingDrainingAndRejectedOnesDoNot() throws Exception {
        ResourceBundle b = EnvoyConfigReader.read(DUMP);
        // not 0.0.0.0_9090 (warming), 10.96.45.12_3306 (draining alone), 0.0.0.0_15014 (error_state alone)
        assertEquals(Set.of("0.0.0.0_15090", "0.0.0.0_15021", "virtualOutbound", "0.0.0.0_9080", "virtualInbound"),
                b.listeners().keySet());
        // the active version of 0.0.0.0_9080, not the one draining beside it
        HttpConnectionManager hcm = assertInstanceOf(HttpConnectionManager.class,
                b.listeners().get("0.0.0.0_9080").filterChains().get(0).filter());
        assertEquals("outbound_0.0.0.0_9080", hcm.statPrefix());
        // the route configurations from RDS only: the inline ones the listeners carry
        assertEquals(Set.of("9080"), b.routes().keySet());
        // not the agent's xds-grpc and sds-grpc, nor the subset warming alone; reviews as active, not as warming
        assertEquals(Set.of("prometheus_stats", "agent", "zipkin", "BlackHoleCluster", "InboundPassthroughClusterIpv4",
                "PassthroughCluster", "inbound|9080||", "outbound|9080||details.default.svc.cluster.local",
                "outbound|9080||productpage.default.svc.cluster.local",
                "outbound|9080||ratings.default.svc.cluster.local", REVIEWS,
                "outbound|9080|v1|reviews.default.svc.cluster.local",
                "outbound|9080|v2|reviews.default.svc.cluster.local",
                "outbound|9080|v3|reviews.default.svc.cluster.local"), b.clusters().keySet());
        Cluster reviews = b.clusters().get(REVIEWS);
        assertEquals(Duration.ofSeconds(10), reviews.connectTimeout());
        assertEquals(3, b.endpoints().get(REVIEWS).endpoints().get(0).lbEndpoints().size());
        // nor the endpoints Envoy dumps for the agent's clusters, their Unix sockets
        assertFalse(b.endpoints().containsKey("xds-grpc") || b.endpoints().containsKey("sds-grpc"),
                b.endpoints().keySet().toString());
        assertTrue(b.endpoints().containsKey("zipkin") && b.endpoints().containsKey("agent"));

        MeshSnapshot s = SnapshotCompiler.compile(b, 1);
        assertNotNull(s);
    }

    @Test
    void proxyConfigPrintsEachKindOfTheDump() throws Exception {
        String f = DUMP.toString();
        ProxyConfigRun r = new ProxyConfigRun();
        assertEquals(0, r.run("listener", "-f", f), r.err());
        assertTrue(r.out().contains("0.0.0.0   15006 Trans: raw_buffer; Addr: *:9080"), r.out());
        assertFalse(r.out().contains("3306") || r.out().contains("9090") || r.out().contains("15014"), r.out());

        r.reset();
        assertEquals(0, r.run("route", "-f", f), r.err());
        // the RDS route configuration, then the inline ones: the Prometheus and health listeners', the inbound ones
        assertTrue(r.out().contains("/stats/prometheus*") && r.out().contains("/healthz/ready*"), r.out());
        assertEquals(2, r.out().lines().filter(l -> l.startsWith("inbound|9080||")).count(), r.out());

        r.reset();
        assertEquals(0, r.run("cluster", "-f", f), r.err());
        // every static cluster, as istioctl: the agent's xds-grpc and sds-grpc too, which the proxy does not load;
        // not the subset warming alone
        assertFalse(r.out().contains(" v4 "), r.out());
        assertTrue(r.out().lines().anyMatch(l -> l.matches("xds-grpc +- +- +- +STATIC +")), r.out());
        assertTrue(r.out().lines().anyMatch(l -> l.matches("sds-grpc +- +- +- +STATIC +")), r.out());
        assertEquals("", r.err());
        r.reset();
        assertEquals(0, r.run("cluster", "-f", f, "--fqdn", "sds-grpc", "-o", "json"), r.err());
        assertEquals("./var/run/secrets/workload-spiffe-uds/socket", dev.inmesh.runtime.xds.EnvoyJson.tree(r.out())
                .path(0).path("loadAssignment").path("endpoints").path(0).path("lbEndpoints").path(0)
                .path("endpoint").path("address").path("pipe").path("path").asText(), r.out());

        r.reset();
        assertEquals(0, r.run("secret", "-f", f), r.err());
        String[] rows = r.out().split("\n");
        assertEquals(4, rows.length, r.out());
        assertTrue(rows[1].matches("file-root:/etc/certs/custom-root\\.pem +WARMING +false *"), rows[1]);
        // the chain's first certificate, its key redacted
        assertTrue(rows[2].matches("default +Cert Chain +ACTIVE +true +4a4129d18e93fa09716e00c89f971f8356475a3e "
                + "+2036-11-28T03:39:13Z +2026-12-01T03:39:13Z"), rows[2]);
        assertTrue(rows[3].matches("ROOTCA +CA +ACTIVE +true +2069e18ca0587ec11584beb7ac28392b7b0c99c5 .*"), rows[3]);

        r.reset();
        assertEquals(0, r.run("bootstrap", "-f", f, "-o", "short"), r.err());
        assertEquals("""
                Istio Version:       1.24.2
                Istio Proxy Version: 4b1e8dbd7f3a56e0c2a9d8f1e6b3c5a7d9e0f2a4
                Envoy Version:       1.32.3/Clean/RELEASE/BoringSSL
                """, r.out());

        r.reset();
        assertEquals(0, r.run("all", "-f", f), r.err());
        // istioctl's sections, an empty line between two and no header
        assertTrue(r.out().startsWith("Istio Version:       1.24.2\n"), r.out());
        for (String table : new String[] {"\n\nNAME +SERVICE FQDN ", "\n\nNAME +ADDRESSES ", "\n\nNAME +VHOST NAME ",
            "\n\nRESOURCE NAME ", "\n\nNAME +STATUS "}) {
            assertTrue(java.util.regex.Pattern.compile(table).matcher(r.out()).find(), table + " in\n" + r.out());
        }
        assertFalse(r.out().contains("------"), r.out());
        // the agent's clusters and the endpoints Envoy dumps for them (its Unix sockets), as istioctl shows them
        assertTrue(r.out().lines().anyMatch(l -> l.matches("cluster/xds-grpc +cluster/xds-grpc +- +- +- +STATIC +")),
                r.out());
        assertTrue(r.out().lines().anyMatch(l -> l.matches("endpoint/\\./etc/istio/proxy/XDS +HEALTHY +xds-grpc")),
                r.out());
    }

    @Test
    void inmeshsOwnDumpOfItWritesItsTimesToTheMillisecondAsEnvoysDoes() throws Exception {
        ResourceBundle b = EnvoyConfigReader.read(DUMP);
        JsonNode dump = EnvoyJson.tree(dev.inmesh.runtime.admin.ConfigDumpBuilder.json(b, "sidecar~10.244.0.21",
                java.time.Instant.parse("2026-11-30T08:14:00.512345678Z")));
        assertEquals("2026-11-30T08:14:00.512Z", dump.path("configs").path(0).path("last_updated").asText());
    }

    @Test
    void wholeNumbersInMetadataPrintAsIstioctlPrintsThem() throws Exception {
        String f = DUMP.toString();
        ProxyConfigRun r = new ProxyConfigRun();
        assertEquals(0, r.run("cluster", "-f", f, "--fqdn", "details.default.svc.cluster.local", "-o", "json"),
                r.err());
        assertTrue(r.out().contains("\"default_original_port\": 9080\n"), r.out());

        r.reset();
        assertEquals(0, r.run("bootstrap", "-f", f), r.err());
        JsonNode metadata = EnvoyJson.tree(r.out()).path("bootstrap").path("node").path("metadata");
        assertTrue(r.out().contains("\"ENVOY_PROMETHEUS_PORT\": 15090,"), r.out());
        assertEquals(2, metadata.path("PROXY_CONFIG").path("concurrency").asInt());
    }
}
