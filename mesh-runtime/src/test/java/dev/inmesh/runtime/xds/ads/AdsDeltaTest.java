package dev.inmesh.runtime.xds.ads;

import static dev.inmesh.runtime.xds.ads.AdsClusterTest.CDS;
import static dev.inmesh.runtime.xds.ads.AdsClusterTest.EDS;
import static dev.inmesh.runtime.xds.ads.AdsClusterTest.LDS;
import static dev.inmesh.runtime.xds.ads.AdsClusterTest.RDS;
import static dev.inmesh.runtime.xds.ads.XdsFixtures.await;
import static dev.inmesh.runtime.xds.ads.XdsFixtures.badRoute;
import static dev.inmesh.runtime.xds.ads.XdsFixtures.clusterFor;
import static dev.inmesh.runtime.xds.ads.XdsFixtures.edsCluster;
import static dev.inmesh.runtime.xds.ads.XdsFixtures.endpoints;
import static dev.inmesh.runtime.xds.ads.XdsFixtures.listener;
import static dev.inmesh.runtime.xds.ads.XdsFixtures.route;
import static dev.inmesh.runtime.xds.ads.XdsFixtures.staticCluster;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.runtime.xds.ResourceType;
import io.envoyproxy.controlplane.cache.v3.Snapshot;
import io.envoyproxy.envoy.config.cluster.v3.Cluster;
import io.envoyproxy.envoy.config.endpoint.v3.ClusterLoadAssignment;
import io.envoyproxy.envoy.config.listener.v3.Listener;
import io.envoyproxy.envoy.config.route.v3.RouteConfiguration;
import io.envoyproxy.envoy.service.discovery.v3.DeltaDiscoveryRequest;
import io.envoyproxy.envoy.service.discovery.v3.DeltaDiscoveryResponse;
import io.envoyproxy.envoy.service.discovery.v3.Resource;
import io.vertx.core.Future;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** The ADS client over incremental xDS (DeltaAggregatedResources), against java-control-plane's delta server. */
class AdsDeltaTest extends AdsRig {
    static final Duration WAIT = Duration.ofSeconds(15);

    static final List<Listener> TWO_LISTENERS = List.of(listener("0.0.0.0_9080", 9080, "9080"),
            listener("0.0.0.0_9090", 9090, "9090"));

    static Snapshot snapshot(String version, List<Cluster> clusters, List<ClusterLoadAssignment> endpoints,
                             List<Listener> listeners, List<RouteConfiguration> routes) {
        return Snapshot.create(clusters, version, endpoints, version, listeners, version, routes, version,
                List.of(), version);
    }

    static Snapshot bookinfo(String version, String cluster) {
        return snapshot(version, List.of(edsCluster("c1")), List.of(endpoints("c1", 2)), TWO_LISTENERS,
                List.of(route("9080", cluster), route("9090", "c9090")));
    }

    void startAndAwaitFirst(Snapshot s) throws Exception {
        server.set(s);
        client = new AdsClient(vertx, AdsOptions.of(AdsClientTest.node(),
                        AdsOptions.XdsServer.plaintext("127.0.0.1", server.port()))
                .withInitialFetchTimeout(Duration.ofSeconds(2))
                .withBackoff(Duration.ofMillis(50), Duration.ofMillis(500))
                .withDelta(true), holder);
        Future<Void> first = client.start();
        first.await(WAIT.toSeconds(), TimeUnit.SECONDS);
        assertTrue(first.succeeded(), () -> "first apply: " + first.cause());
    }

    /** The version the server gave resource {@code name} of {@code typeUrl} in its latest response naming it. */
    String versionSent(String typeUrl, String name) {
        String out = null;
        for (DeltaDiscoveryResponse r : server.deltaResponses) {
            if (r.getTypeUrl().equals(typeUrl)) {
                for (Resource resource : r.getResourcesList()) {
                    if (resource.getName().equals(name)) {
                        out = resource.getVersion();
                    }
                }
            }
        }
        assertNotNull(out, name + " sent");
        return out;
    }

    @Test
    void theFirstConfigurationArrivesOverOneDeltaStreamInEnvoysOrderAndRoutes() throws Exception {
        startAndAwaitFirst(bookinfo("1", "c1"));
        assertTrue(server.requests.isEmpty(), "no state of the world request: " + server.requests);
        List<DeltaDiscoveryRequest> rs = server.deltaRequests;
        DeltaDiscoveryRequest cds = rs.get(0);
        assertEquals(CDS, cds.getTypeUrl());
        assertEquals("sidecar~10.1.2.3~productpage-v1-7f9.default~default.svc.cluster.local", cds.getNode().getId());
        assertTrue(cds.getResourceNamesSubscribeList().isEmpty(), "wildcard: " + cds);
        assertTrue(cds.getInitialResourceVersionsMap().isEmpty());
        DeltaDiscoveryRequest eds = server.awaitDeltaRequest(r -> r.getTypeUrl().equals(EDS), WAIT);
        assertEquals(List.of("c1"), eds.getResourceNamesSubscribeList());
        DeltaDiscoveryRequest lds = server.awaitDeltaRequest(r -> r.getTypeUrl().equals(LDS), WAIT);
        assertTrue(lds.getResourceNamesSubscribeList().isEmpty(), "wildcard: " + lds);
        assertFalse(lds.hasNode(), "the node on the first request only");
        DeltaDiscoveryRequest rds = server.awaitDeltaRequest(r -> r.getTypeUrl().equals(RDS), WAIT);
        assertEquals(List.of("9080", "9090"), rds.getResourceNamesSubscribeList());
        assertTrue(rs.indexOf(cds) < rs.indexOf(eds) && rs.indexOf(eds) < rs.indexOf(lds)
                && rs.indexOf(lds) < rs.indexOf(rds), "CDS, EDS, LDS, RDS: " + rs);

        assertEquals("c1", clusterFor(holder.current(), "9080", "/productpage"));
        assertEquals("c9090", clusterFor(holder.current(), "9090", "/"));
        assertEquals(2, AdsClusterTest.hosts(holder.current().endpoints("c1")));
        // each resource keeps its own version, as Envoy's config dump shows it in delta
        String routeVersion = versionSent(RDS, "9080");
        assertEquals(routeVersion, holder.current().resources().version(ResourceType.ROUTE, "9080").versionInfo());
        assertEquals(versionSent(CDS, "c1"), holder.current().resources().version(ResourceType.CLUSTER, "c1")
                .versionInfo());

        // every response ACKed with its nonce; the status shows the response's system_version_info
        DeltaDiscoveryResponse rdsResponse = server.awaitDeltaResponse(r -> r.getTypeUrl().equals(RDS), WAIT);
        DeltaDiscoveryRequest ack = server.awaitDeltaRequest(r -> r.getTypeUrl().equals(RDS)
                && r.getResponseNonce().equals(rdsResponse.getNonce()), WAIT);
        assertFalse(ack.hasErrorDetail());
        await(() -> "1".equals(client.status().type("RouteConfiguration").ackedVersion()), WAIT, "RDS ACK");
        XdsStatus.TypeStatus st = client.status().type("RouteConfiguration");
        assertEquals(List.of("9080", "9090"), st.subscribed());
        assertEquals(2, st.resources());
        assertEquals("1", client.dynamicState().typeVersions().get(ResourceType.LISTENER));
    }

    @Test
    void aRouteChangeAppliesToTheNextLookupAndOnlyTheChangedRouteIsSent() throws Exception {
        startAndAwaitFirst(bookinfo("1", "c1"));
        String unchanged = holder.current().resources().version(ResourceType.ROUTE, "9090").versionInfo();
        server.set(snapshot("2", List.of(edsCluster("c1")), List.of(endpoints("c1", 2)), TWO_LISTENERS,
                List.of(route("9080", "c2"), route("9090", "c9090"))));
        await(() -> "c2".equals(clusterFor(holder.current(), "9080", "/")), WAIT, "route 9080 -> c2");
        assertEquals(versionSent(RDS, "9080"), holder.current().resources().version(ResourceType.ROUTE, "9080")
                .versionInfo());
        assertEquals(unchanged, holder.current().resources().version(ResourceType.ROUTE, "9090").versionInfo());
        await(() -> "2".equals(client.status().type("RouteConfiguration").ackedVersion()), WAIT, "ACK of 2");
    }

    @Test
    void aClusterTheServerRemovesIsDeletedAndItsLoadAssignmentUnsubscribed() throws Exception {
        startAndAwaitFirst(snapshot("1", List.of(edsCluster("c1"), edsCluster("c2")),
                List.of(endpoints("c1", 2), endpoints("c2", 3)), TWO_LISTENERS,
                List.of(route("9080", "c1"), route("9090", "c2"))));
        assertNotNull(holder.current().cluster("c2"));
        server.set(snapshot("2", List.of(edsCluster("c1")), List.of(endpoints("c1", 2)), TWO_LISTENERS,
                List.of(route("9080", "c1"), route("9090", "c2"))));

        DeltaDiscoveryResponse removal = server.awaitDeltaResponse(r -> r.getTypeUrl().equals(CDS)
                && r.getRemovedResourcesList().contains("c2"), WAIT);
        assertEquals(0, removal.getResourcesCount(), "nothing else changed: " + removal);
        await(() -> holder.current().cluster("c2") == null, WAIT, "cluster c2 deleted");
        assertNotNull(holder.current().cluster("c1"), "the cluster the response did not name stays");
        server.awaitDeltaRequest(r -> r.getTypeUrl().equals(EDS)
                && r.getResourceNamesUnsubscribeList().equals(List.of("c2")), WAIT);
        await(() -> client.status().type("ClusterLoadAssignment").subscribed().equals(List.of("c1")), WAIT,
                "EDS subscribed to c1 only");
    }

    @Test
    void aBadRouteIsNackedByNameWhileTheRestAppliesAndTheOldRouteKeepsServing() throws Exception {
        startAndAwaitFirst(bookinfo("1", "c1"));
        server.set(snapshot("2", List.of(edsCluster("c1")), List.of(endpoints("c1", 2)), TWO_LISTENERS,
                List.of(badRoute("9080"), route("9090", "c9090-v2"))));

        DeltaDiscoveryRequest nack = server.awaitDeltaRequest(DeltaDiscoveryRequest::hasErrorDetail, WAIT);
        assertEquals(RDS, nack.getTypeUrl());
        String detail = nack.getErrorDetail().getMessage();
        assertTrue(detail.contains("RouteConfiguration \"9080\""), detail);
        assertTrue(detail.contains("safe_regex"), detail);
        assertEquals(com.google.rpc.Code.INTERNAL_VALUE, nack.getErrorDetail().getCode());
        DeltaDiscoveryResponse bad = server.deltaResponses.stream().filter(r -> r.getNonce()
                .equals(nack.getResponseNonce())).findFirst().orElseThrow();
        assertEquals("2", bad.getSystemVersionInfo(), "the NACK names the response it rejects by its nonce");

        await(() -> "c9090-v2".equals(clusterFor(holder.current(), "9090", "/")), WAIT, "the good route applied");
        assertEquals("c1", clusterFor(holder.current(), "9080", "/"), "the bad route's last good version serves");
        await(() -> client.status().type("RouteConfiguration").nacked(), WAIT, "the NACK in the status");
        XdsStatus.TypeStatus rds = client.status().type("RouteConfiguration");
        assertEquals("2", rds.lastNackVersion());
        assertTrue(rds.lastNackError().contains("\"9080\""), rds.lastNackError());
        assertNotNull(client.dynamicState().failure(ResourceType.ROUTE, "9080"), "its error_state");

        // fixed on the server: applied and ACKed
        server.set(snapshot("3", List.of(edsCluster("c1")), List.of(endpoints("c1", 2)), TWO_LISTENERS,
                List.of(route("9080", "c3"), route("9090", "c9090-v2"))));
        await(() -> "c3".equals(clusterFor(holder.current(), "9080", "/")), WAIT, "the fixed route");
        await(() -> "3".equals(client.status().type("RouteConfiguration").ackedVersion()), WAIT, "ACK of 3");
        assertFalse(client.status().type("RouteConfiguration").nacked());
        await(() -> client.dynamicState().failure(ResourceType.ROUTE, "9080") == null, WAIT, "error_state cleared");
    }

    /**
     * As Envoy's gRPC subscription over delta xDS: an update counts one {@code update_attempt} as it comes in,
     * before it is applied; one rejected then counts another with its {@code update_rejected} (two in all), one
     * accepted none more.
     */
    @Test
    void aRejectedDeltaUpdateCountsTwoAttemptsAndAnAcceptedOneOne() throws Exception {
        java.util.function.ToLongFunction<String> value = configStats();
        String lds = "envoy_listener_manager_lds_";
        refuse("0.0.0.0_7000");
        startAndAwaitFirst(bookinfo("1", "c1"));
        assertEquals(2, value.applyAsLong(lds + "update_attempt"), "the start and the first update");
        assertEquals(1, value.applyAsLong(lds + "update_success"));

        List<Listener> listeners = new java.util.ArrayList<>(TWO_LISTENERS);
        listeners.add(listener("0.0.0.0_7000", 7000, "9080"));
        server.set(snapshot("2", List.of(edsCluster("c1")), List.of(endpoints("c1", 2)), listeners,
                List.of(route("9080", "c1"), route("9090", "c9090"))));
        server.awaitDeltaRequest(DeltaDiscoveryRequest::hasErrorDetail, WAIT);
        await(() -> value.applyAsLong(lds + "update_rejected") == 1, WAIT, "the NACK counted");
        assertEquals(4, value.applyAsLong(lds + "update_attempt"));
        assertEquals(1, value.applyAsLong(lds + "update_success"));
    }

    @Test
    void aRestartedServerIsToldTheVersionsHeldAndTheClientResyncs() throws Exception {
        startAndAwaitFirst(bookinfo("1", "c1"));
        var held = holder.current().resources();
        Map<String, String> listeners = Map.of(
                "0.0.0.0_9080", held.version(ResourceType.LISTENER, "0.0.0.0_9080").versionInfo(),
                "0.0.0.0_9090", held.version(ResourceType.LISTENER, "0.0.0.0_9090").versionInfo());
        Map<String, String> routes = Map.of("9080", held.version(ResourceType.ROUTE, "9080").versionInfo(),
                "9090", held.version(ResourceType.ROUTE, "9090").versionInfo());
        Map<String, String> clusters = Map.of("c1", held.version(ResourceType.CLUSTER, "c1").versionInfo());
        int port = server.port();
        server.close();
        await(() -> !client.status().connected(), WAIT, "disconnected");
        assertEquals("c1", clusterFor(holder.current(), "9080", "/"), "the last good snapshot keeps serving");

        server = XdsTestServer.start(port);
        server.set(bookinfo("7", "c7"));
        await(() -> "c7".equals(clusterFor(holder.current(), "9080", "/")), WAIT, "resynced from the new server");
        DeltaDiscoveryRequest cds = server.deltaRequests.get(0);
        assertEquals(CDS, cds.getTypeUrl());
        assertTrue(cds.hasNode());
        assertEquals(clusters, cds.getInitialResourceVersionsMap());
        DeltaDiscoveryRequest lds = server.awaitDeltaRequest(r -> r.getTypeUrl().equals(LDS), WAIT);
        assertEquals(listeners, lds.getInitialResourceVersionsMap());
        assertTrue(lds.getResourceNamesSubscribeList().isEmpty(), "still wildcard");
        DeltaDiscoveryRequest rds = server.awaitDeltaRequest(r -> r.getTypeUrl().equals(RDS), WAIT);
        assertEquals(routes, rds.getInitialResourceVersionsMap());
        assertEquals(List.of("9080", "9090"), rds.getResourceNamesSubscribeList());
        await(() -> "7".equals(client.status().type("RouteConfiguration").ackedVersion()), WAIT, "ACK of 7");
    }

    @Test
    void aRouteNoListenerNeedsAnyMoreIsUnsubscribed() throws Exception {
        startAndAwaitFirst(bookinfo("1", "c1"));
        server.set(snapshot("2", List.of(edsCluster("c1")), List.of(endpoints("c1", 2)),
                List.of(listener("0.0.0.0_9080", 9080, "9080")), List.of(route("9080", "c1"),
                        route("9090", "c9090"))));
        server.awaitDeltaResponse(r -> r.getTypeUrl().equals(LDS)
                && r.getRemovedResourcesList().equals(List.of("0.0.0.0_9090")), WAIT);
        await(() -> holder.current().listener("0.0.0.0_9090") == null, WAIT, "listener 9090 deleted");
        DeltaDiscoveryRequest unsubscribe = server.awaitDeltaRequest(r -> r.getTypeUrl().equals(RDS)
                && !r.getResourceNamesUnsubscribeList().isEmpty(), WAIT);
        assertEquals(List.of("9090"), unsubscribe.getResourceNamesUnsubscribeList());
        assertTrue(unsubscribe.getResourceNamesSubscribeList().isEmpty(), unsubscribe.toString());
        assertTrue(unsubscribe.getResponseNonce().isEmpty(), "a change of names is no ACK");
        await(() -> holder.current().resources().routes().get("9090") == null, WAIT, "route 9090 dropped");
        assertEquals("c1", clusterFor(holder.current(), "9080", "/"));
        await(() -> client.status().type("RouteConfiguration").subscribed().equals(List.of("9080")), WAIT,
                "the status shows the subscription");
    }

    @Test
    void aRouteTheServerRemovesWhileAListenerStillAsksForItKeepsServingAsEnvoysRdsIgnoresSuchARemoval()
            throws Exception {
        startAndAwaitFirst(bookinfo("1", "c1"));
        // both listeners stay; route 9090 is gone from the server, which names it in removed_resources
        server.set(snapshot("2", List.of(edsCluster("c1")), List.of(endpoints("c1", 2)), TWO_LISTENERS,
                List.of(route("9080", "c2"))));
        DeltaDiscoveryResponse removal = server.awaitDeltaResponse(r -> r.getTypeUrl().equals(RDS)
                && r.getRemovedResourcesList().contains("9090"), WAIT);
        server.awaitDeltaRequest(r -> r.getResponseNonce().equals(removal.getNonce()), WAIT);
        await(() -> "c2".equals(clusterFor(holder.current(), "9080", "/")), WAIT, "route 9080 -> c2");
        assertEquals("c9090", clusterFor(holder.current(), "9090", "/"), "route 9090 keeps serving");
        assertEquals(List.of("9080", "9090"), client.status().type("RouteConfiguration").subscribed());
        assertFalse(client.status().type("RouteConfiguration").nacked(), "ACKed, as Envoy");
    }

    @Test
    void aClusterFailingEnvoysProtoConstraintsRejectsTheWholeDeltaResponseAndNothingOfItApplies() throws Exception {
        List<RouteConfiguration> routes = List.of(route("9080", "c1"), route("9090", "c9090"));
        List<ClusterLoadAssignment> endpoints = List.of(endpoints("c1", 2));
        startAndAwaitFirst(snapshot("1", List.of(edsCluster("c1"), staticCluster("c2", 9002)), endpoints,
                TWO_LISTENERS, routes));
        // c2 changed, and c9 with a connect_timeout of 0s, which Envoy's API refuses (gt: 0s)
        Cluster c9 = staticCluster("c9", 9009).toBuilder().setConnectTimeout(com.google.protobuf.Duration
                .getDefaultInstance()).build();
        server.set(snapshot("2", List.of(edsCluster("c1"), staticCluster("c2", 9012), c9), endpoints, TWO_LISTENERS,
                routes));

        DeltaDiscoveryRequest nack = server.awaitDeltaRequest(r -> r.getTypeUrl().equals(CDS)
                && r.hasErrorDetail(), WAIT);
        String detail = nack.getErrorDetail().getMessage();
        assertTrue(detail.startsWith("Cluster \"c9\": connect_timeout: 0s (expected: > 0s)"), detail);
        assertTrue(detail.contains("the whole Cluster response is rejected"), detail);
        await(() -> client.status().type("Cluster").nacked(), WAIT, "the NACK in the status");
        assertEquals(9002, holder.current().cluster("c2").loadAssignment().endpoints().get(0).lbEndpoints().get(0)
                .address().port(), "c2's change not applied");
        assertEquals(null, holder.current().cluster("c9"));
        assertEquals("1", client.status().type("Cluster").ackedVersion());
    }
}
