package dev.inmesh.runtime.xds.ads;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.runtime.xds.ResourceType;
import io.envoyproxy.envoy.config.core.v3.Node;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** The ADS client's small parts: back-off, the node, options checks, the status JSON. */
class AdsPartsTest {

    /** Listeners and clusters rejected by name are listed as Envoy's managers list them; others name each resource. */
    @Test
    void aNackListsListenersAndClustersAsEnvoysManagersDo() {
        var errors = new java.util.LinkedHashMap<String, String>();
        errors.put("l3", "Listener \"l3\": address: missing");
        errors.put("l4", "Listener \"l4\": duplicate listener l4 found");
        assertEquals("Error adding/updating listener(s) l3: address: missing\nl4: duplicate listener l4 found\n",
                AdsClient.nackMessage(ResourceType.LISTENER, errors));
        assertEquals("Error adding/updating cluster(s) c3: connect_timeout: PT-1S (expected: > 0s)",
                AdsClient.nackMessage(ResourceType.CLUSTER,
                        Map.of("c3", "Cluster \"c3\": connect_timeout: PT-1S (expected: > 0s)")));
        var whole = new java.util.LinkedHashMap<String, String>();
        whole.put("x", "Cluster resources[0]: type_url \"a\" (expected: b)");
        whole.put("", "the whole Cluster response is rejected");
        assertEquals("Cluster resources[0]: type_url \"a\" (expected: b); the whole Cluster response is rejected",
                AdsClient.nackMessage(ResourceType.CLUSTER, whole));
        assertEquals("RouteConfiguration \"r\": bad",
                AdsClient.nackMessage(ResourceType.ROUTE, Map.of("r", ResourceType.ROUTE.about("r") + "bad")));
    }

    @Test
    void backOffIsEnvoysFullyJitteredDoublingFromHalfASecondUpToThirtySeconds() {
        AdsOptions o = AdsOptions.of(NodeOptions.of("p", "ns", "1.2.3.4"),
                AdsOptions.XdsServer.plaintext("istiod.istio-system.svc", 15010));
        assertEquals(Duration.ofMillis(500), o.backoffBase(), "Envoy's xDS retry base");
        assertEquals(Duration.ofSeconds(30), o.backoffMax(), "Envoy's xDS retry maximum");
        // each delay is drawn from [0, interval); the interval doubles from the base up to the maximum
        long[] intervals = {500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000};
        Backoff highest = new Backoff(o.backoffBase(), o.backoffMax(), fixed(0.999999));
        Backoff lowest = new Backoff(o.backoffBase(), o.backoffMax(), fixed(0.0));
        for (int i = 0; i < intervals.length; i++) {
            long hi = highest.nextMillis();
            assertTrue(hi < intervals[i] && hi >= intervals[i] - 1, i + ": " + hi);
            assertTrue(lowest.nextMillis() <= 1, i + ": fully jittered down to 0");
        }
        highest.reset();
        assertTrue(highest.nextMillis() < 500, "after reset");
        Backoff any = new Backoff(o.backoffBase(), o.backoffMax(), new Random(1));
        for (int i = 0; i < 1000; i++) {
            long d = any.nextMillis();
            assertTrue(d >= 0 && d < 30000, i + ": " + d);
        }
    }

    /** A Random whose every double is {@code v}. */
    private static Random fixed(double v) {
        return new Random() {
            @Override
            public double nextDouble() {
                return v;
            }
        };
    }

    @Test
    void theNodeIsIstiosSidecarWithTheMetadataIstiodReads() {
        NodeOptions o = new NodeOptions("reviews-v2-5b8", "bookinfo", "10.4.0.7", "cluster.local", "Kubernetes",
                "mesh1", "1.24.2", Map.of("app", "reviews", "version", "v2"), "reviews-v2", "TPROXY", "",
                Map.of("SERVICE_ACCOUNT", "bookinfo-reviews"));
        Node n = NodeBuilder.build(o);
        assertEquals("sidecar~10.4.0.7~reviews-v2-5b8.bookinfo~bookinfo.svc.cluster.local", n.getId());
        assertEquals("reviews.bookinfo", n.getCluster());
        var m = n.getMetadata().getFieldsMap();
        assertEquals("bookinfo", m.get("NAMESPACE").getStringValue());
        assertEquals("reviews-v2-5b8", m.get("NAME").getStringValue());
        assertEquals("reviews-v2", m.get("WORKLOAD_NAME").getStringValue());
        assertEquals("1.24.2", m.get("ISTIO_VERSION").getStringValue());
        assertEquals("Kubernetes", m.get("CLUSTER_ID").getStringValue());
        assertEquals("mesh1", m.get("MESH_ID").getStringValue());
        assertEquals("TPROXY", m.get("INTERCEPTION_MODE").getStringValue());
        assertEquals("10.4.0.7", m.get("INSTANCE_IPS").getStringValue());
        assertEquals("bookinfo-reviews", m.get("SERVICE_ACCOUNT").getStringValue());
        assertEquals("reviews", m.get("LABELS").getStructValue().getFieldsMap().get("app").getStringValue());
        assertEquals("inmesh", n.getUserAgentName());
    }

    @Test
    void theNodeTellsItsVersionAsEnvoysBuildVersionWhichIstioctlPrints() {
        NodeOptions o = NodeOptions.of("p", "ns", "10.0.0.1");
        Node release = NodeBuilder.build(o, "1.4.2");
        assertEquals(Node.UserAgentVersionTypeCase.USER_AGENT_BUILD_VERSION, release.getUserAgentVersionTypeCase());
        assertEquals(1, release.getUserAgentBuildVersion().getVersion().getMajorNumber());
        assertEquals(4, release.getUserAgentBuildVersion().getVersion().getMinorNumber());
        assertEquals(2, release.getUserAgentBuildVersion().getVersion().getPatch());
        assertEquals(0, release.getUserAgentBuildVersion().getMetadata().getFieldsCount());
        Node snapshot = NodeBuilder.build(o, "0.1.0-SNAPSHOT");
        assertEquals("SNAPSHOT", snapshot.getUserAgentBuildVersion().getMetadata().getFieldsMap().get("build.label")
                .getStringValue());
        assertEquals(1, snapshot.getUserAgentBuildVersion().getVersion().getMinorNumber());
        // a build from the sources has no such version
        Node dev = NodeBuilder.build(o, "dev");
        assertEquals("dev", dev.getUserAgentVersion());
        assertEquals("inmesh", dev.getUserAgentName());
    }

    @Test
    void optionsSayWhatWasExpected() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> AdsOptions.XdsServer.plaintext("istiod", 0));
        assertEquals("port: 0 (expected: 1-65535)", e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> AdsOptions.of(NodeOptions.of("p", "ns", "1.2.3.4")));
        assertEquals("servers: [] (expected: at least one xDS server)", e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> NodeOptions.of("p", "", "1.2.3.4"));
        assertEquals("namespace: \"\" (expected: not empty)", e.getMessage());
        AdsOptions o = AdsOptions.of(NodeOptions.of("p", "ns", "1.2.3.4"),
                AdsOptions.XdsServer.plaintext("istiod.istio-system.svc", 15010));
        assertEquals(Duration.ofSeconds(15), o.initialFetchTimeout());
        assertEquals(Duration.ZERO, o.withInitialFetchTimeout(Duration.ZERO).initialFetchTimeout(), "0: no timeout");
        e = assertThrows(IllegalArgumentException.class, () -> o.withInitialFetchTimeout(Duration.ofSeconds(-1)));
        assertTrue(e.getMessage().startsWith("initialFetchTimeout: PT-1S"), e.getMessage());
        assertEquals("istiod.istio-system.svc:15010", o.servers().get(0).address());
    }

    @Test
    void theStatusReadsBackFromItsJson() {
        Instant t = Instant.parse("2026-11-28T10:00:00Z");
        XdsStatus s = new XdsStatus("istiod:15012", true, t, "", true, List.of(
                new XdsStatus.TypeStatus("Listener", "type.googleapis.com/envoy.config.listener.v3.Listener", "v3",
                        "7", t, "", "", null, 4, true, List.of()),
                new XdsStatus.TypeStatus("RouteConfiguration",
                        "type.googleapis.com/envoy.config.route.v3.RouteConfiguration", "v2", "8", t, "v3",
                        "RouteConfiguration \"9080\": virtual_hosts[0].routes[1].match.safe_regex.regex: bad", t, 2,
                        false, List.of("9080", "9090"))));
        String json = XdsStatusJson.encode(s);
        assertTrue(json.contains("\"last_nack_error\" : \"RouteConfiguration \\\"9080\\\""), json);
        assertEquals(s, XdsStatusJson.decode(json));
        assertThrows(IllegalArgumentException.class, () -> XdsStatusJson.decode("{\"x\": 1}"));
    }
}
