package dev.inmesh.samples.bookinfo;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.config.cluster.Cluster;
import dev.inmesh.api.config.cluster.DiscoveryType;
import dev.inmesh.api.config.endpoint.ClusterLoadAssignment;
import dev.inmesh.api.config.endpoint.LbEndpoint;
import dev.inmesh.api.config.listener.Listener;
import dev.inmesh.api.config.route.RouteConfiguration;
import dev.inmesh.api.config.route.VirtualHost;
import dev.inmesh.runtime.xds.EnvoyConfigReader;
import dev.inmesh.runtime.xds.ResourceBundle;
import dev.inmesh.runtime.xds.ResourceType;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** The shipped mesh configuration, read as a mesh reads it: shaped as istiod would generate it for bookinfo. */
class MeshConfigTest {
    static ResourceBundle config;

    @BeforeAll
    static void read() throws Exception {
        config = EnvoyConfigReader.read(Bookinfo.defaultMeshDir());
    }

    @Test
    void theOutboundListenerOnPort9080DoesNotBindAndTakesItsRoutesFromRds() {
        Listener l = config.listeners().get("0.0.0.0_9080");
        assertNotNull(l);
        var message = (io.envoyproxy.envoy.config.listener.v3.Listener) config.message(ResourceType.LISTENER,
                "0.0.0.0_9080");
        assertFalse(message.getBindToPort().getValue());
        assertEquals(Set.of("0.0.0.0_9080", "virtualInbound"), config.listeners().keySet());
        assertEquals(Set.of("9080"), config.routes().keySet());
    }

    @Test
    void eachServiceHasAVirtualHostWithIstiosDomains() {
        RouteConfiguration rc = config.routes().get("9080");
        Map<String, VirtualHost> vhosts = rc.virtualHosts().stream()
                .collect(Collectors.toMap(VirtualHost::name, v -> v));
        for (String app : List.of("productpage", "details", "reviews", "ratings")) {
            VirtualHost v = vhosts.get(app + ".default.svc.cluster.local:9080");
            assertNotNull(v, app);
            assertTrue(v.domains().containsAll(List.of(app + ".default.svc.cluster.local",
                    app + ".default.svc.cluster.local:9080", app, app + ":9080", app + ".default",
                    app + ".default:9080", app + ".default.svc", app + ".default.svc:9080")), app);
        }
        assertEquals(List.of("*"), vhosts.get("allow_any").domains());
    }

    @Test
    void everyPodIsTheEndpointOfItsServiceAndOfItsSubset() {
        for (PodSpec pod : PodSpec.ALL) {
            for (String subset : List.of("", pod.version())) {
                String name = "outbound|9080|" + subset + "|" + pod.fqdn();
                Cluster c = config.clusters().get(name);
                assertNotNull(c, name);
                assertEquals(DiscoveryType.EDS, c.type(), name);
                assertEquals(name, c.edsServiceName());
                ClusterLoadAssignment cla = config.endpoints().get(name);
                assertNotNull(cla, name);
                Set<String> addresses = cla.endpoints().stream().flatMap(l -> l.lbEndpoints().stream())
                        .map(LbEndpoint::address).map(a -> a.address() + ":" + a.port()).collect(Collectors.toSet());
                assertTrue(addresses.contains(pod.ip() + ":9080"), name + " " + addresses);
            }
        }
    }

    @Test
    void subsetClustersCarryIstiosMetadata() {
        Cluster c = config.clusters().get("outbound|9080|v2|reviews.default.svc.cluster.local");
        Map<String, Object> istio = c.metadata().filterMetadata().get("istio");
        assertEquals("v2", istio.get("subset"));
        assertEquals("/apis/networking.istio.io/v1/namespaces/default/destination-rule/reviews", istio.get("config"));
        assertTrue(String.valueOf(istio.get("services")).contains("reviews.default.svc.cluster.local"));
    }

    @Test
    void eachPodsAddressSelectsTheInboundChainOfItsServiceWhoseClusterNamesIt() {
        var inbound = (io.envoyproxy.envoy.config.listener.v3.Listener) config.message(ResourceType.LISTENER,
                "virtualInbound");
        assertFalse(inbound.getBindToPort().getValue());
        for (PodSpec pod : PodSpec.ALL) {
            var chains = inbound.getFilterChainsList().stream()
                    .filter(c -> c.getFilterChainMatch().getPrefixRangesList().stream()
                            .anyMatch(r -> r.getAddressPrefix().equals(pod.ip()) && r.getPrefixLen().getValue() == 32))
                    .toList();
            assertEquals(1, chains.size(), pod.ip());
            assertEquals(pod.app() + "_9080", chains.get(0).getName());
            String cluster = "inbound|9080||" + pod.fqdn();
            var hcm = (dev.inmesh.api.config.listener.HttpConnectionManager) config.listeners().get("virtualInbound")
                    .filterChains().stream().filter(c -> c.name().equals(pod.app() + "_9080")).findFirst()
                    .orElseThrow().filter();
            assertTrue(String.valueOf(hcm.routeConfig()).contains(cluster), cluster);
            Cluster c = config.clusters().get(cluster);
            assertNotNull(c, cluster);
            assertEquals(DiscoveryType.ORIGINAL_DST, c.type());
            assertTrue(String.valueOf(c.metadata().filterMetadata().get("istio").get("services"))
                    .contains("host=" + pod.fqdn()), cluster);
        }
    }

    @Test
    void theRoutesOfVirtualServicesNameThemAsIstiodDoesAndProxyConfigShowsThem() throws Exception {
        // the routes as a config dump holds them: istioctl's (and inmesh's) proxy-config route reads their metadata
        var json = new com.fasterxml.jackson.databind.ObjectMapper();
        var dump = json.createObjectNode();
        var routes = dump.putArray("configs").addObject()
                .put("@type", "type.googleapis.com/envoy.admin.v3.RoutesConfigDump")
                .putArray("dynamic_route_configs").addObject();
        routes.set("route_config", json.readTree(Bookinfo.defaultMeshDir().resolve("20-routes.json").toFile())
                .get("resources").get(0));
        java.io.ByteArrayOutputStream table = new java.io.ByteArrayOutputStream();
        java.io.InputStream stdin = System.in;
        java.io.PrintStream stdout = System.out;
        try {
            System.setIn(new java.io.ByteArrayInputStream(json.writeValueAsBytes(dump)));
            System.setOut(new java.io.PrintStream(table, true, java.nio.charset.StandardCharsets.UTF_8));
            assertEquals(0, new picocli.CommandLine(new dev.inmesh.runtime.tools.ProxyConfigCommand())
                    .execute("route", "-f", "-"));
        } finally {
            System.setIn(stdin);
            System.setOut(stdout);
        }
        String out = table.toString(java.nio.charset.StandardCharsets.UTF_8);
        Map<String, List<String>> byVhost = out.lines().skip(1).map(l -> l.split("\\s{2,}"))
                .collect(Collectors.groupingBy(cols -> cols[1],
                        Collectors.mapping(cols -> cols.length == 5 ? cols[4] : "", Collectors.toList())));
        assertEquals(List.of("reviews.default", "reviews.default"),
                byVhost.get("reviews.default.svc.cluster.local:9080"), out);
        assertEquals(List.of("ratings.default"), byVhost.get("ratings.default.svc.cluster.local:9080"), out);
        // no VirtualService for these: istiod's default route carries no config
        assertEquals(List.of(""), byVhost.get("details.default.svc.cluster.local:9080"), out);
        assertEquals(List.of(""), byVhost.get("productpage.default.svc.cluster.local:9080"), out);
    }
}
