package dev.inmesh.runtime.xds;

import static dev.inmesh.runtime.xds.Fixtures.istio;
import static dev.inmesh.runtime.xds.Fixtures.read;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.config.cluster.Cluster;
import dev.inmesh.api.config.cluster.DiscoveryType;
import dev.inmesh.api.config.cluster.LbPolicy;
import dev.inmesh.api.config.core.SocketAddress;
import dev.inmesh.api.config.endpoint.ClusterLoadAssignment;
import dev.inmesh.api.config.endpoint.HealthStatus;
import dev.inmesh.api.config.endpoint.LbEndpoint;
import dev.inmesh.api.config.endpoint.LocalityLbEndpoints;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * Istio's clusters and endpoints, as istioctl and Envoy's admin print them, load into the expected records. Needs the
 * Cluster and ClusterLoadAssignment parsers. Istio's {@code BlackHoleCluster} is STATIC with no
 * {@code load_assignment} (Envoy accepts it: no hosts); the bootstrap's {@code xds-grpc} and {@code sds-grpc}
 * clusters (the Istio agent's Unix sockets) are left out of a bootstrap, as docs/configuration.md says.
 */
class IstioClusterFixturesTest {

    private static final String REVIEWS = "reviews.default.svc.cluster.local";

    @Test
    void istioctlClusterListLoadsEdsOriginalDstAndStaticClusters() {
        Map<String, Cluster> clusters = read(istio("bookinfo-clusters.json")).clusters();
        assertEquals(Set.of("BlackHoleCluster", "InboundPassthroughClusterIpv4", "PassthroughCluster",
                "inbound|9080||", "outbound|9080||details.default.svc.cluster.local",
                "outbound|9080||ratings.default.svc.cluster.local", "outbound|9080||" + REVIEWS,
                "outbound|9080|v1|" + REVIEWS, "outbound|9080|v2|" + REVIEWS, "outbound|9080|v3|" + REVIEWS),
                clusters.keySet());

        Cluster v1 = clusters.get("outbound|9080|v1|" + REVIEWS);
        assertEquals(DiscoveryType.EDS, v1.type());
        assertEquals("outbound|9080|v1|" + REVIEWS, v1.serviceName());
        assertEquals(LbPolicy.LEAST_REQUEST, v1.lbPolicy());
        assertEquals(Duration.ofSeconds(10), v1.connectTimeout());
        assertEquals("v1", ((Map<?, ?>) v1.metadata().filterMetadata().get("istio")).get("subset"));

        Cluster passthrough = clusters.get("PassthroughCluster");
        assertEquals(DiscoveryType.ORIGINAL_DST, passthrough.type());
        assertEquals(LbPolicy.CLUSTER_PROVIDED, passthrough.lbPolicy());

        Cluster inbound = clusters.get("InboundPassthroughClusterIpv4");
        assertEquals(new SocketAddress("127.0.0.6", 0), inbound.upstreamBindAddress());
        assertEquals(Duration.ofSeconds(60), clusters.get("inbound|9080||").cleanupInterval());

        Cluster blackhole = clusters.get("BlackHoleCluster");
        assertEquals(DiscoveryType.STATIC, blackhole.type());
        assertTrue(blackhole.loadAssignment() == null || blackhole.loadAssignment().endpoints().isEmpty());
    }

    @Test
    void istioctlEndpointListLoadsHostsWithTheirHealthAndLocality() {
        Map<String, ClusterLoadAssignment> endpoints = read(istio("bookinfo-endpoints.json")).endpoints();
        assertTrue(endpoints.keySet().containsAll(Set.of("outbound|9080||" + REVIEWS, "outbound|9080|v1|" + REVIEWS,
                "outbound|9080||ratings.default.svc.cluster.local", "agent")), endpoints.keySet().toString());

        List<LbEndpoint> reviews = hosts(endpoints.get("outbound|9080||" + REVIEWS));
        assertEquals(List.of(new SocketAddress("10.244.0.12", 9080), new SocketAddress("10.244.0.13", 9080),
                new SocketAddress("10.244.0.14", 9080)), reviews.stream().map(LbEndpoint::address).toList());
        assertTrue(reviews.stream().allMatch(h -> h.healthStatus() == HealthStatus.HEALTHY));
        LocalityLbEndpoints group = endpoints.get("outbound|9080|v2|" + REVIEWS).endpoints().get(0);
        assertEquals("us-central1", group.locality().region());
        assertEquals("us-central1-a", group.locality().zone());

        List<LbEndpoint> ratings = hosts(endpoints.get("outbound|9080||ratings.default.svc.cluster.local"));
        assertEquals(HealthStatus.UNHEALTHY, ratings.get(0).healthStatus());
        assertEquals(HealthStatus.HEALTHY, ratings.get(1).healthStatus());
    }

    private static List<LbEndpoint> hosts(ClusterLoadAssignment cla) {
        return cla.endpoints().stream().flatMap(g -> g.lbEndpoints().stream()).toList();
    }

    @Test
    void aCompleteConfigDumpLoadsBootstrapAndDynamicResources() {
        ResourceBundle dump = read(istio("config_dump_full.json"));
        assertEquals(Set.of("0.0.0.0_15090", "0.0.0.0_15021", "virtualOutbound", "0.0.0.0_9080", "virtualInbound"),
                dump.listeners().keySet());
        assertEquals(Set.of("9080"), dump.routes().keySet());
        assertTrue(dump.clusters().keySet().containsAll(Set.of("prometheus_stats", "agent", "PassthroughCluster",
                "outbound|9080|v3|" + REVIEWS)), dump.clusters().keySet().toString());
        assertEquals(new SocketAddress("127.0.0.1", 15000),
                hosts(dump.clusters().get("prometheus_stats").loadAssignment()).get(0).address());

        ClusterLoadAssignment v3 = dump.endpoints().get("outbound|9080|v3|" + REVIEWS);
        assertEquals(ClusterLoadAssignment.DEFAULT_OVERPROVISIONING_FACTOR, v3.overprovisioningFactor());
        assertEquals(List.of(new SocketAddress("10.244.0.14", 9080)),
                hosts(v3).stream().map(LbEndpoint::address).toList());
        assertEquals(3, hosts(dump.endpoints().get("outbound|9080||" + REVIEWS)).size());

        assertEquals(new ResourceBundle.Version("2026-11-28T12:00:00Z/42", Instant.parse("2026-11-28T12:00:01.010Z")),
                dump.version(dev.inmesh.runtime.xds.ResourceType.CLUSTER, "outbound|9080|v1|" + REVIEWS));
        assertEquals(Instant.parse("2026-11-28T12:00:02.001Z"),
                dump.version(ResourceType.ENDPOINT, "outbound|9080|v1|" + REVIEWS).lastUpdated());
    }

    @Test
    void istioBootstrapLoadsItsStaticListenersAndClusters() {
        ResourceBundle b = read(istio("bootstrap.json"));
        assertEquals(Set.of("0.0.0.0_15090", "0.0.0.0_15021"), b.listeners().keySet());
        Cluster agent = b.clusters().get("agent");
        assertEquals(DiscoveryType.STATIC, agent.type());
        assertEquals(Duration.ofMillis(250), agent.connectTimeout());
        assertEquals(new SocketAddress("127.0.0.1", 15020), hosts(agent.loadAssignment()).get(0).address());
    }
}
