package dev.inmesh.runtime.xds.ads;

import static dev.inmesh.runtime.xds.ads.XdsFixtures.await;
import static dev.inmesh.runtime.xds.ads.XdsFixtures.clusterFor;
import static dev.inmesh.runtime.xds.ads.XdsFixtures.edsCluster;
import static dev.inmesh.runtime.xds.ads.XdsFixtures.endpoints;
import static dev.inmesh.runtime.xds.ads.XdsFixtures.inlineListener;
import static dev.inmesh.runtime.xds.ads.XdsFixtures.listener;
import static dev.inmesh.runtime.xds.ads.XdsFixtures.route;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.runtime.xds.ResourceType;
import io.envoyproxy.controlplane.cache.v3.Snapshot;
import io.envoyproxy.envoy.config.cluster.v3.Cluster;
import io.envoyproxy.envoy.config.endpoint.v3.ClusterLoadAssignment;
import io.envoyproxy.envoy.config.route.v3.RouteConfiguration;
import io.envoyproxy.envoy.service.discovery.v3.DiscoveryRequest;
import io.vertx.core.Future;
import java.time.Duration;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** CDS and EDS through the ADS client: these need the cluster and load assignment parsers. */
class AdsClusterTest extends AdsRig {
    static final Duration WAIT = Duration.ofSeconds(20);
    static final String CDS = ResourceType.CLUSTER.typeUrl();
    static final String EDS = ResourceType.ENDPOINT.typeUrl();
    static final String LDS = ResourceType.LISTENER.typeUrl();
    static final String RDS = ResourceType.ROUTE.typeUrl();

    static Snapshot snapshot(String version, List<Cluster> clusters, List<ClusterLoadAssignment> endpoints,
                             List<RouteConfiguration> routes) {
        return Snapshot.create(clusters, version, endpoints, version,
                List.of(listener("0.0.0.0_9080", 9080, "9080")), version, routes, version, List.of(), version);
    }

    void start() throws Exception {
        start(Duration.ofSeconds(5));
    }

    void start(Duration initialFetchTimeout) throws Exception {
        client = new AdsClient(vertx, AdsOptions.of(NodeOptions.of("p", "default", "10.0.0.1"),
                AdsOptions.XdsServer.plaintext("127.0.0.1", server.port()))
                .withInitialFetchTimeout(initialFetchTimeout)
                .withBackoff(Duration.ofMillis(50), Duration.ofMillis(500)), holder);
        Future<Void> first = client.start();
        first.await(WAIT.toSeconds(), TimeUnit.SECONDS);
        assertTrue(first.succeeded(), () -> String.valueOf(first.cause()));
    }

    static int hosts(dev.inmesh.api.config.endpoint.ClusterLoadAssignment cla) {
        return cla.endpoints().stream().mapToInt(l -> l.lbEndpoints().size()).sum();
    }

    @Test
    void clustersAndTheirEndpointsArriveBeforeListenersAndTheirRoutes() throws Exception {
        server.set(snapshot("1", List.of(edsCluster("c1")), List.of(endpoints("c1", 3)),
                List.of(route("9080", "c1"))));
        start();
        List<DiscoveryRequest> rs = server.requests;
        DiscoveryRequest eds = server.awaitRequest(r -> r.getTypeUrl().equals(EDS), WAIT);
        DiscoveryRequest lds = server.awaitRequest(r -> r.getTypeUrl().equals(LDS), WAIT);
        assertEquals(List.of("c1"), eds.getResourceNamesList());
        assertTrue(rs.indexOf(eds) < rs.indexOf(lds), "EDS before LDS: " + rs);
        assertNotNull(holder.current().cluster("c1"));
        assertEquals(3, hosts(holder.current().endpoints("c1")));
        assertEquals("c1", clusterFor(holder.current(), "9080", "/"));
    }

    @Test
    void aChangedEdsClusterKeepsItsLoadAssignmentUntilANewOneComesAsTheServerNeedNotSendItAgain() throws Exception {
        var endpoints = List.of(endpoints("c1", 3));
        var routes = List.of(route("9080", "c1"));
        server.set(Snapshot.create(List.of(edsCluster("c1")), "1", endpoints, "1",
                List.of(listener("0.0.0.0_9080", 9080, "9080")), "1", routes, "1", List.of(), "1"));
        start();
        Cluster changed = edsCluster("c1").toBuilder().setConnectTimeout(
                com.google.protobuf.Duration.newBuilder().setSeconds(2)).build();
        // a new cluster version, its endpoints' unchanged: java-control-plane does not send them again
        server.set(Snapshot.create(List.of(changed), "2", endpoints, "1",
                List.of(listener("0.0.0.0_9080", 9080, "9080")), "1", routes, "1", List.of(), "1"));
        await(() -> java.time.Duration.ofSeconds(2).equals(holder.current().cluster("c1").connectTimeout()), WAIT,
                "the changed cluster applied");
        assertEquals(3, hosts(holder.current().endpoints("c1")), "its hosts kept");
        assertEquals(List.of("1"), server.responses.stream().filter(r -> r.getTypeUrl().equals(EDS))
                .map(r -> r.getVersionInfo()).toList(), "EDS sent once");
        assertTrue(client.dynamicState().warmingClusters().isEmpty(), "not warming");
    }

    @Test
    void anEdsOfTenThousandEndpointsIsApplied() throws Exception {
        server.set(snapshot("1", List.of(edsCluster("c1")), List.of(endpoints("c1", 10_000)),
                List.of(route("9080", "c1"))));
        start();
        assertEquals(10_000, hosts(holder.current().endpoints("c1")));
        server.set(snapshot("2", List.of(edsCluster("c1")), List.of(endpoints("c1", 9_999)),
                List.of(route("9080", "c1"))));
        await(() -> hosts(holder.current().endpoints("c1")) == 9_999, WAIT, "the EDS update");
        assertEquals("2", holder.current().resources().version(ResourceType.ENDPOINT, "c1").versionInfo());
    }

    @Test
    void aClusterAbsentFromTheServerIsDeletedAndItsEndpointsUnsubscribed() throws Exception {
        server.set(snapshot("1", List.of(edsCluster("c1"), edsCluster("c2")),
                List.of(endpoints("c1", 2), endpoints("c2", 2)), List.of(route("9080", "c1"))));
        start();
        assertNotNull(holder.current().cluster("c2"));
        server.set(snapshot("2", List.of(edsCluster("c1")), List.of(endpoints("c1", 2)),
                List.of(route("9080", "c1"))));
        await(() -> holder.current().cluster("c2") == null, WAIT, "c2 deleted");
        await(() -> holder.current().endpoints("c2") == null, WAIT, "c2's endpoints dropped");
        server.awaitRequest(r -> r.getTypeUrl().equals(EDS) && r.getResourceNamesList().equals(List.of("c1")),
                WAIT);
        assertNotNull(holder.current().cluster("c1"));
    }

    @Test
    void aClusterAValidatedRouteStillNamesIsDeletedAndTheRouteStaysLoadedAsEnvoyValidatesOnlyWhenARouteLoads()
            throws Exception {
        RouteConfiguration validated = route("9080", "c2").toBuilder().setValidateClusters(
                com.google.protobuf.BoolValue.of(true)).build();
        server.set(snapshot("1", List.of(edsCluster("c1"), edsCluster("c2")),
                List.of(endpoints("c1", 1), endpoints("c2", 1)), List.of(validated)));
        start();
        server.set(snapshot("2", List.of(edsCluster("c1")), List.of(endpoints("c1", 1)), List.of(validated)));
        await(() -> "2".equals(client.status().type("Cluster").ackedVersion()), WAIT, "the CDS deletion ACKed");
        // the route's version 2 too, before version 3 is set (else the server may send 3 in its place)
        await(() -> "2".equals(client.status().type("RouteConfiguration").ackedVersion()), WAIT, "RDS 2 ACKed");
        assertNull(holder.current().cluster("c2"), "c2 deleted");
        assertEquals("c2", clusterFor(holder.current(), "9080", "/"), "the route loaded before stays");

        // a route table loaded now is checked: naming c2, it is rejected by name and the one loaded keeps serving
        RouteConfiguration changed = validated.toBuilder().setVirtualHosts(0, validated.getVirtualHosts(0)
                .toBuilder().addDomains("changed.example")).build();
        server.set(snapshot("3", List.of(edsCluster("c1")), List.of(endpoints("c1", 1)), List.of(changed)));
        DiscoveryRequest nack = server.awaitRequest(r -> r.getTypeUrl().equals(RDS) && r.hasErrorDetail(), WAIT);
        assertTrue(nack.getErrorDetail().getMessage().contains("unknown cluster 'c2'"), nack.toString());
        assertEquals("2", client.status().type("RouteConfiguration").ackedVersion());
    }

    @Test
    void aRouteNamingAnUnknownClusterIsNackedAlsoBeforeTheFirstConfigurationIsApplied() throws Exception {
        RouteConfiguration validated = route("9080", "nope").toBuilder().setValidateClusters(
                com.google.protobuf.BoolValue.of(true)).build();
        server.set(snapshot("1", List.of(edsCluster("c1")), List.of(endpoints("c1", 1)), List.of(validated)));
        start();
        // as Envoy, which checks a route configuration's clusters when it arrives: NACKed, not ACKed
        DiscoveryRequest nack = server.awaitRequest(r -> r.getTypeUrl().equals(RDS) && r.hasErrorDetail(), WAIT);
        assertTrue(nack.getErrorDetail().getMessage().contains("unknown cluster 'nope'"), nack.toString());
        assertEquals("", nack.getVersionInfo(), "nothing accepted before");
        assertTrue(server.requests.stream().noneMatch(r -> r.getTypeUrl().equals(RDS)
                && r.getVersionInfo().equals("1")), "version 1 of RDS was never ACKed: " + server.requests);
        await(() -> client.status().type("RouteConfiguration").nacked(), WAIT, "the NACK in the status");
        assertEquals("", client.status().type("RouteConfiguration").ackedVersion());
        // rejected before a good version arrived: the listener serves it empty
        assertTrue(holder.current().routeTable("9080").config().virtualHosts().isEmpty());

        server.set(snapshot("2", List.of(edsCluster("c1")), List.of(endpoints("c1", 1)),
                List.of(validated.toBuilder().setVirtualHosts(0, validated.getVirtualHosts(0).toBuilder()
                        .setRoutes(0, validated.getVirtualHosts(0).getRoutes(0).toBuilder().setRoute(
                                validated.getVirtualHosts(0).getRoutes(0).getRoute().toBuilder()
                                        .setCluster("c1")))).build())));
        await(() -> "c1".equals(clusterFor(holder.current(), "9080", "/")), WAIT, "the fixed route");
        await(() -> "2".equals(client.status().type("RouteConfiguration").ackedVersion()), WAIT, "ACK of 2");
    }

    /** The cluster a GET of {@code /} goes to through the inline route table of listener {@code name}. */
    static String inlineClusterFor(dev.inmesh.runtime.snapshot.MeshSnapshot s, String name) {
        var l = s.listener(name);
        if (l == null) {
            return null;
        }
        var t = s.routeTable(l.listener().filterChains().get(0));
        var r = t.route(new XdsFixtures.Get("example.com", "/"), 0);
        return r instanceof dev.inmesh.runtime.router.RouteResult.Forward f ? f.cluster() : null;
    }

    @Test
    void aListenerWhoseInlineRouteConfigNamesAnUnknownClusterIsNackedAsEnvoyValidatesInlineRoutesByDefault()
            throws Exception {
        server.set(Snapshot.create(List.of(edsCluster("c1")), "1", List.of(endpoints("c1", 1)), "1",
                List.of(inlineListener("0.0.0.0_8080", 8080, "inline-8080", "c1")), "1", List.of(), "1", List.of(),
                "1"));
        start();
        assertEquals("c1", inlineClusterFor(holder.current(), "0.0.0.0_8080"));

        // no validate_clusters in the route_config: Envoy's default there is true (false only for RDS)
        server.set(Snapshot.create(List.of(edsCluster("c1")), "2", List.of(endpoints("c1", 1)), "2",
                List.of(inlineListener("0.0.0.0_8080", 8080, "inline-8080", "nope")), "2", List.of(), "2", List.of(),
                "2"));
        DiscoveryRequest nack = server.awaitRequest(r -> r.getTypeUrl().equals(LDS) && r.hasErrorDetail(), WAIT);
        String detail = nack.getErrorDetail().getMessage();
        assertTrue(detail.contains("listener(s) 0.0.0.0_8080: "), detail);
        assertTrue(detail.contains("RouteConfiguration \"inline-8080\""), detail);
        assertTrue(detail.contains("unknown cluster 'nope'"), detail);
        assertEquals("1", nack.getVersionInfo(), "the last version accepted");
        assertEquals("c1", inlineClusterFor(holder.current(), "0.0.0.0_8080"), "the last good listener serves");
    }

    @Test
    void anEdsServiceTheServerNeverSendsIsServedEmptyAfterTheInitialFetchTimeout() throws Exception {
        server.set(snapshot("1", List.of(edsCluster("c1"), edsCluster("nobody")), List.of(endpoints("c1", 1)),
                List.of(route("9080", "c1"))));
        start();
        assertNotNull(holder.current().endpoints("nobody"));
        assertEquals(0, hosts(holder.current().endpoints("nobody")));
        assertEquals("c1", clusterFor(holder.current(), "9080", "/"));
    }

    @Test
    void anEdsClusterWhoseEdsConfigSaysZeroWarmsUntilItsEndpointsArriveAsIstiosClustersDo() throws Exception {
        server.set(snapshot("1", List.of(edsCluster("c1")), List.of(endpoints("c1", 1)),
                List.of(route("9080", "c1"))));
        start(Duration.ofMillis(500));
        // istiod's clusters say eds_config.initial_fetch_timeout: 0s (no timeout); b-default says nothing, so the
        // client's 500 ms applies to it. The server withholds both load assignments.
        Cluster zero = edsCluster("a-zero");
        zero = zero.toBuilder().setEdsClusterConfig(zero.getEdsClusterConfig().toBuilder().setEdsConfig(
                zero.getEdsClusterConfig().getEdsConfig().toBuilder().setInitialFetchTimeout(
                        com.google.protobuf.Duration.getDefaultInstance()))).build();
        server.set(snapshot("2", List.of(edsCluster("c1"), zero, edsCluster("b-default")),
                List.of(endpoints("c1", 1)), List.of(route("9080", "c1"))));
        await(() -> holder.current().cluster("b-default") != null, WAIT, "b-default, by the client's timeout");
        assertEquals(0, hosts(holder.current().endpoints("b-default")));
        assertNull(holder.current().cluster("a-zero"), "0s: still warming, as in Envoy");

        Cluster zeroAgain = zero;
        server.set(snapshot("3", List.of(edsCluster("c1"), zeroAgain, edsCluster("b-default"), edsCluster("c3")),
                List.of(endpoints("c1", 1), endpoints("a-zero", 2), endpoints("b-default", 1), endpoints("c3", 1)),
                List.of(route("9080", "c1"))));
        await(() -> holder.current().cluster("a-zero") != null, WAIT, "a-zero, warmed by its endpoints");
        assertEquals(2, hosts(holder.current().endpoints("a-zero")));
    }

    @Test
    void aNewEdsClusterWarmsUntilItsEndpointsArrive() throws Exception {
        server.set(snapshot("1", List.of(edsCluster("c1")), List.of(endpoints("c1", 1)),
                List.of(route("9080", "c1"))));
        start(Duration.ofSeconds(30)); // far from the bound below: a loaded machine's slow push stays within it
        // c2 is new; the server withholds EDS (it answers only when it has every name asked for)
        server.set(snapshot("2", List.of(edsCluster("c1"), edsCluster("c2")), List.of(endpoints("c1", 1)),
                List.of(route("9080", "c1"))));
        server.awaitRequest(r -> r.getTypeUrl().equals(EDS) && r.getResourceNamesList().contains("c2"), WAIT);
        Thread.sleep(200);
        assertNull(holder.current().cluster("c2"), "warming: not used before its endpoints arrive, as in Envoy");
        assertNotNull(holder.current().cluster("c1"));
        // as Envoy's cluster manager pauses CDS while a cluster warms: version 2 is not ACKed yet
        assertTrue(server.requests.stream().noneMatch(r -> r.getTypeUrl().equals(CDS)
                && r.getVersionInfo().equals("2")), "CDS ACKed while c2 warms");

        // (c3 makes the client ask for EDS again: under load, java-control-plane can lose the EDS watch that the
        // client's request opened while the server was pushing version 2)
        server.set(snapshot("3", List.of(edsCluster("c1"), edsCluster("c2"), edsCluster("c3")),
                List.of(endpoints("c1", 1), endpoints("c2", 2), endpoints("c3", 1)), List.of(route("9080", "c1"))));
        long t0 = System.nanoTime();
        await(() -> holder.current().cluster("c2") != null, WAIT, "c2 warmed");
        assertTrue(System.nanoTime() - t0 < TimeUnit.SECONDS.toNanos(15), "warmed by the endpoints' arrival, "
                + "not by the initial fetch timeout");
        assertEquals(2, hosts(holder.current().endpoints("c2")));
        // warmed: the clusters are ACKed, the last version sent by then
        server.awaitRequest(r -> r.getTypeUrl().equals(CDS) && !r.hasErrorDetail()
                && Set.of("2", "3").contains(r.getVersionInfo()), WAIT);
    }
}
