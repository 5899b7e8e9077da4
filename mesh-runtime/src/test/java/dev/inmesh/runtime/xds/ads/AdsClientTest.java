package dev.inmesh.runtime.xds.ads;

import static dev.inmesh.runtime.xds.ads.XdsFixtures.await;
import static dev.inmesh.runtime.xds.ads.XdsFixtures.badRoute;
import static dev.inmesh.runtime.xds.ads.XdsFixtures.clusterFor;
import static dev.inmesh.runtime.xds.ads.XdsFixtures.listener;
import static dev.inmesh.runtime.xds.ads.XdsFixtures.route;
import static dev.inmesh.runtime.xds.ads.XdsFixtures.staticCluster;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.runtime.snapshot.MeshSnapshot;
import dev.inmesh.runtime.xds.ResourceBundle;
import dev.inmesh.runtime.xds.ResourceType;
import io.envoyproxy.controlplane.cache.v3.Snapshot;
import io.envoyproxy.envoy.config.listener.v3.Listener;
import io.envoyproxy.envoy.config.route.v3.RouteConfiguration;
import io.envoyproxy.envoy.service.discovery.v3.DiscoveryRequest;
import io.vertx.core.Future;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

class AdsClientTest extends AdsRig {
    static final Duration WAIT = Duration.ofSeconds(20);
    static final String LDS = ResourceType.LISTENER.typeUrl();
    static final String RDS = ResourceType.ROUTE.typeUrl();
    static final String EDS = ResourceType.ENDPOINT.typeUrl();
    static final String CDS = ResourceType.CLUSTER.typeUrl();

    static NodeOptions node() {
        return NodeOptions.of("productpage-v1-7f9", "default", "10.1.2.3")
                .withLabels(java.util.Map.of("app", "productpage", "version", "v1"));
    }

    AdsOptions options(AdsOptions.XdsServer... servers) {
        return AdsOptions.of(node(), servers).withInitialFetchTimeout(Duration.ofSeconds(2))
                .withBackoff(Duration.ofMillis(50), Duration.ofMillis(500));
    }

    AdsClient start(AdsOptions o) {
        client = new AdsClient(vertx, o, holder);
        return client;
    }

    static Snapshot snapshot(String version, List<Listener> listeners, List<RouteConfiguration> routes) {
        return Snapshot.create(List.of(), version, List.of(), version, listeners, version, routes, version, List.of(),
                version);
    }

    static Snapshot snapshot(String lv, String rv, List<Listener> listeners, List<RouteConfiguration> routes) {
        return Snapshot.create(List.of(), lv, List.of(), lv, listeners, lv, routes, rv, List.of(), lv);
    }

    Snapshot bookinfo(String version, String cluster) {
        return snapshot(version, List.of(listener("0.0.0.0_9080", 9080, "9080"), listener("0.0.0.0_9090", 9090,
                "9090")), List.of(route("9080", cluster), route("9090", "c9090")));
    }

    void startAndAwaitFirst(Snapshot s) throws Exception {
        startAndAwaitFirst(s, Duration.ofSeconds(2));
    }

    /** As {@link #startAndAwaitFirst(Snapshot)}, with {@code initialFetchTimeout}. */
    void startAndAwaitFirst(Snapshot s, Duration initialFetchTimeout) throws Exception {
        server.set(s);
        Future<Void> first = start(options(AdsOptions.XdsServer.plaintext("127.0.0.1", server.port()))
                .withInitialFetchTimeout(initialFetchTimeout)).start();
        first.await(WAIT.toSeconds(), TimeUnit.SECONDS);
        assertTrue(first.succeeded(), () -> "first apply: " + first.cause());
    }

    @Test
    void theFirstCompleteConfigurationIsAppliedOnceAndMakesTheHolderReady() throws Exception {
        List<MeshSnapshot> published = new CopyOnWriteArrayList<>();
        List<String> threads = new CopyOnWriteArrayList<>();
        holder.onUpdate(s -> {
            published.add(s);
            threads.add(Thread.currentThread().getName());
        });
        startAndAwaitFirst(bookinfo("1", "c1"));
        assertTrue(threads.get(0).startsWith("vert.x-worker-thread"), "compiled off the event loop: " + threads);

        assertTrue(holder.ready());
        assertEquals(1, published.size(), "one apply for LDS and RDS together");
        MeshSnapshot s = holder.current();
        assertEquals("c1", clusterFor(s, "9080", "/productpage"));
        assertEquals("c9090", clusterFor(s, "9090", "/"));
        ResourceBundle.Version v = s.resources().version(ResourceType.ROUTE, "9080");
        assertEquals("1", v.versionInfo());
        assertNotNull(v.lastUpdated());
        assertNotNull(s.resources().message(ResourceType.LISTENER, "0.0.0.0_9080"));
    }

    @Test
    void typesAreRequestedInEnvoysOrderWithTheSidecarNodeOnTheFirstRequest() throws Exception {
        startAndAwaitFirst(bookinfo("1", "c1"));
        List<DiscoveryRequest> first = server.requests;
        DiscoveryRequest cds = first.get(0);
        assertEquals(CDS, cds.getTypeUrl());
        assertEquals("sidecar~10.1.2.3~productpage-v1-7f9.default~default.svc.cluster.local", cds.getNode().getId());
        assertEquals("productpage.default", cds.getNode().getCluster());
        var meta = cds.getNode().getMetadata().getFieldsMap();
        assertEquals("default", meta.get("NAMESPACE").getStringValue());
        assertEquals("productpage-v1-7f9", meta.get("NAME").getStringValue());
        assertEquals("v1", meta.get("LABELS").getStructValue().getFieldsMap().get("version").getStringValue());
        assertEquals("REDIRECT", meta.get("INTERCEPTION_MODE").getStringValue());
        assertEquals("Kubernetes", meta.get("CLUSTER_ID").getStringValue());
        // listeners only once the clusters (and their endpoints) have arrived, as Envoy at start: as Envoy's, asked
        // for while the clusters' response is taken, before its ACK (which goes once the response is processed)
        DiscoveryRequest cdsAck = server.awaitRequest(r -> r.getTypeUrl().equals(CDS)
                && !r.getResponseNonce().isEmpty(), WAIT);
        DiscoveryRequest lds = server.awaitRequest(r -> r.getTypeUrl().equals(LDS), WAIT);
        assertTrue(first.indexOf(lds) > first.indexOf(cds), "LDS after CDS: " + first);
        assertEquals(first.indexOf(lds) + 1, first.indexOf(cdsAck), "the clusters' ACK next: " + first);
        assertFalse(lds.hasNode());
        DiscoveryRequest rds = server.awaitRequest(r -> r.getTypeUrl().equals(RDS), WAIT);
        assertEquals(List.of("9080", "9090"), rds.getResourceNamesList());
        assertTrue(first.indexOf(rds) > first.indexOf(lds), "RDS after LDS");
        // wildcard types carry no names
        assertTrue(cds.getResourceNamesList().isEmpty());
    }

    @Test
    void everyResponseIsAckedWithItsVersionAndNonce() throws Exception {
        startAndAwaitFirst(bookinfo("1", "c1"));
        DiscoveryRequest ack = server.awaitRequest(r -> r.getTypeUrl().equals(RDS) && r.getVersionInfo().equals("1")
                && !r.getResponseNonce().isEmpty(), WAIT);
        assertFalse(ack.hasErrorDetail());
        await(() -> "1".equals(client.status().type("RouteConfiguration").ackedVersion()), WAIT, "RDS ACK");
        XdsStatus st = client.status();
        assertTrue(st.connected());
        assertTrue(st.ready());
        assertEquals("127.0.0.1:" + server.port(), st.server());
        assertEquals("1", st.type("Listener").ackedVersion());
        assertEquals(2, st.type("Listener").resources());
        assertEquals(List.of("9080", "9090"), st.type("RouteConfiguration").subscribed());
        assertFalse(st.type("RouteConfiguration").nacked());
    }

    @Test
    void aRouteChangeIsVisibleToTheNextLookup() throws Exception {
        startAndAwaitFirst(bookinfo("1", "c1"));
        long before = holder.current().generation();
        server.set(snapshot("1", "2", bookinfo("1", "c1").listeners().resources().values().stream().toList(),
                List.of(route("9080", "c2"), route("9090", "c9090"))));
        await(() -> "c2".equals(clusterFor(holder.current(), "9080", "/")), WAIT, "route 9080 -> c2");
        MeshSnapshot s = holder.current();
        assertTrue(s.generation() > before);
        assertEquals("2", s.resources().version(ResourceType.ROUTE, "9080").versionInfo());
        // the unchanged route keeps its version: only what changed is updated
        assertEquals("1", s.resources().version(ResourceType.ROUTE, "9090").versionInfo());
    }

    @Test
    void aBadRouteIsNackedByNameAndFieldWhileTheRestAppliesAndTheOldRouteKeepsServing() throws Exception {
        startAndAwaitFirst(bookinfo("1", "c1"));
        List<Listener> listeners = bookinfo("1", "c1").listeners().resources().values().stream().toList();
        server.set(snapshot("1", "2", listeners, List.of(badRoute("9080"), route("9090", "c9090-v2"))));

        DiscoveryRequest nack = server.awaitRequest(DiscoveryRequest::hasErrorDetail, WAIT);
        assertEquals(RDS, nack.getTypeUrl());
        assertEquals("1", nack.getVersionInfo(), "a NACK carries the last version accepted");
        String detail = nack.getErrorDetail().getMessage();
        assertTrue(detail.contains("RouteConfiguration \"9080\""), detail);
        assertTrue(detail.contains("safe_regex"), detail);
        assertTrue(detail.contains("a("), detail);
        assertEquals(com.google.rpc.Code.INTERNAL_VALUE, nack.getErrorDetail().getCode(), "INTERNAL, as Envoy");

        await(() -> "c9090-v2".equals(clusterFor(holder.current(), "9090", "/")), WAIT, "the good route applied");
        assertEquals("c1", clusterFor(holder.current(), "9080", "/"), "the bad route's last good version serves");
        await(() -> client.status().type("RouteConfiguration").nacked(), WAIT, "the NACK in the status");
        XdsStatus.TypeStatus rds = client.status().type("RouteConfiguration");
        assertEquals("2", rds.lastNackVersion());
        assertEquals("1", rds.ackedVersion());
        assertTrue(rds.lastNackError().contains("\"9080\""));
        XdsStatus now = client.status();
        assertEquals(now, XdsStatusJson.decode(XdsStatusJson.encode(now)), "/debug/xds_status round trip");

        // fixed on the server: ACKed and applied
        server.set(snapshot("1", "3", listeners, List.of(route("9080", "c3"), route("9090", "c9090-v2"))));
        await(() -> "c3".equals(clusterFor(holder.current(), "9080", "/")), WAIT, "the fixed route");
        await(() -> "3".equals(client.status().type("RouteConfiguration").ackedVersion()), WAIT, "ACK of 3");
        assertFalse(client.status().type("RouteConfiguration").nacked());
    }

    /**
     * Refuses listener 0.0.0.0_7000 by a holder check (as the standalone proxy's bind check), starts on bookinfo and
     * sends bookinfo's listeners and {@code added} with the routes {@code rv} (RDS version 1 or 2).
     */
    void refuse7000AndAdd(String rv, Listener... added) throws Exception {
        refuse("0.0.0.0_7000");
        startAndAwaitFirst(bookinfo("1", "c1"));
        List<Listener> listeners = new java.util.ArrayList<>(bookinfo("1", "c1").listeners().resources().values());
        listeners.addAll(List.of(added));
        server.set(snapshot("2", rv, listeners, List.of(route("9080", "c1"), route("9090", "c9090"))));
    }

    @Test
    void aListenerTheHoldersCheckRefusesIsNackedByNameWhileTheRestOfTheUpdateApplies() throws Exception {
        refuse7000AndAdd("2", listener("0.0.0.0_7000", 7000, "9080"), listener("0.0.0.0_7001", 7001, "9080"));

        DiscoveryRequest nack = server.awaitRequest(DiscoveryRequest::hasErrorDetail, WAIT);
        assertEquals(LDS, nack.getTypeUrl());
        assertEquals("1", nack.getVersionInfo());
        String detail = nack.getErrorDetail().getMessage();
        assertTrue(detail.contains("Error adding/updating listener(s) 0.0.0.0_7000: address: cannot bind"), detail);
        await(() -> holder.current().listeners().containsKey("0.0.0.0_7001"), WAIT, "the other listener applied");
        assertFalse(holder.current().listeners().containsKey("0.0.0.0_7000"));
        assertNotNull(client.dynamicState().failure(ResourceType.LISTENER, "0.0.0.0_7000"), "its error_state");
    }

    /**
     * As Envoy's listener manager pauses RDS while it takes an LDS response (LdsApiImpl::onConfigUpdate): a listener
     * the holder's check refuses, whose route configuration nothing else names, never has that name asked for: one
     * request goes with the names asked for once the response is processed, not one naming it and another taking it
     * back.
     */
    @Test
    void aRefusedListenersRouteConfigurationIsNeverAskedFor() throws Exception {
        refuse7000AndAdd("2", listener("0.0.0.0_7000", 7000, "r9"), listener("0.0.0.0_7001", 7001, "9080"));
        server.awaitRequest(DiscoveryRequest::hasErrorDetail, WAIT);
        await(() -> holder.current().listeners().containsKey("0.0.0.0_7001"), WAIT, "the other listener applied");
        Thread.sleep(300); // a request naming it would have gone with the NACK
        assertTrue(server.requests.stream().noneMatch(r -> r.getTypeUrl().equals(ResourceType.ROUTE.typeUrl())
                && r.getResourceNamesList().contains("r9")), server.requests.toString());
    }

    /**
     * As Envoy's gRPC subscriptions count: {@code update_attempt} once at the start and with each outcome,
     * {@code update_success} for each update ACKed (one that changes nothing too), {@code update_rejected} for each
     * NACK, {@code update_failure} when the stream fails; {@code control_plane.connected_state} while it is open.
     */
    @Test
    void ldsAndCdsCountAcceptedAndRejectedUpdatesAndTheStreamsStateAsEnvoysSubscriptionStatistics() throws Exception {
        java.util.function.ToLongFunction<String> value = configStats();
        String lds = "envoy_listener_manager_lds_";
        refuse("0.0.0.0_7000");
        startAndAwaitFirst(bookinfo("1", "c1"));
        assertEquals(2, value.applyAsLong(lds + "update_attempt"));
        assertEquals(1, value.applyAsLong(lds + "update_success"));
        assertEquals(1, value.applyAsLong("envoy_cluster_manager_cds_update_success"), "an empty CDS response");
        assertEquals(2, value.applyAsLong("envoy_listener_manager_listener_added"));
        assertEquals(1, value.applyAsLong("envoy_control_plane_connected_state"));

        server.set(bookinfo("2", "c1"));
        await(() -> value.applyAsLong(lds + "update_success") == 2, WAIT, "the same listeners in version 2");
        List<Listener> listeners = new java.util.ArrayList<>(bookinfo("1", "c1").listeners().resources().values());
        listeners.add(listener("0.0.0.0_7000", 7000, "9080"));
        listeners.add(listener("0.0.0.0_7001", 7001, "9080"));
        server.set(snapshot("3", listeners, List.of(route("9080", "c1"), route("9090", "c9090"))));
        server.awaitRequest(DiscoveryRequest::hasErrorDetail, WAIT);

        // java-control-plane sends the rejected version again to a NACK naming the last one accepted: each counts
        assertTrue(value.applyAsLong(lds + "update_rejected") >= 1);
        assertEquals(2, value.applyAsLong(lds + "update_success"));
        // read while the server may resend it: once the two are read between two responses
        await(() -> 1 + 2 + value.applyAsLong(lds + "update_rejected") == value.applyAsLong(lds + "update_attempt"),
                WAIT, "an attempt for the start and for each outcome");
        assertEquals(3, value.applyAsLong("envoy_listener_manager_listener_added"), "0.0.0.0_7001");
        assertEquals(0, value.applyAsLong("envoy_listener_manager_listener_modified"));
        assertEquals(0, value.applyAsLong("envoy_cluster_manager_cds_update_rejected"));
        assertEquals(0, value.applyAsLong(lds + "update_failure"));

        server.close();
        await(() -> value.applyAsLong("envoy_control_plane_connected_state") == 0, WAIT, "disconnected");
        await(() -> value.applyAsLong(lds + "update_failure") >= 1, WAIT, "the stream's failure");
        assertTrue(value.applyAsLong("envoy_cluster_manager_cds_update_failure") >= 1);
    }

    @Test
    void aWarmingListenerTheHoldersCheckRefusesIsNackedWithItsLdsUpdateNotLaterWithItsRoute() throws Exception {
        // its route 7000 is not served: the listener would warm (and stay out of the snapshot) until it arrives
        refuse7000AndAdd("1", listener("0.0.0.0_7000", 7000, "7000"));

        DiscoveryRequest nack = server.awaitRequest(DiscoveryRequest::hasErrorDetail, WAIT);
        assertEquals(LDS, nack.getTypeUrl(), "as Envoy binds a listener when it is added, before it warms");
        assertTrue(nack.getErrorDetail().getMessage().contains("listener(s) 0.0.0.0_7000: "), nack.toString());
        assertNotNull(client.dynamicState().failure(ResourceType.LISTENER, "0.0.0.0_7000"));
        assertFalse(holder.current().listeners().containsKey("0.0.0.0_7000"));
    }

    @Test
    void aNackMessageIsCutAtFourKibAsEnvoysWhileTheStatusKeepsItWhole() throws Exception {
        startAndAwaitFirst(bookinfo("1", "c1"));
        String longName = "r".repeat(5000);
        List<Listener> listeners = new java.util.ArrayList<>(bookinfo("1", "c1").listeners().resources().values());
        listeners.add(listener("0.0.0.0_7000", 7000, longName));
        server.set(snapshot("2", listeners, List.of(route("9080", "c1"), route("9090", "c9090"),
                badRoute(longName))));
        DiscoveryRequest nack = server.awaitRequest(DiscoveryRequest::hasErrorDetail, WAIT);
        assertEquals(com.google.rpc.Code.INTERNAL_VALUE, nack.getErrorDetail().getCode());
        String detail = nack.getErrorDetail().getMessage();
        assertEquals(4096 + "...(truncated)".length(), detail.length());
        assertTrue(detail.startsWith("RouteConfiguration \"rrr"), detail.substring(0, 40));
        assertTrue(detail.endsWith("...(truncated)"), detail.substring(detail.length() - 40));
        await(() -> client.status().type("RouteConfiguration").nacked(), WAIT, "the NACK in the status");
        assertTrue(client.status().type("RouteConfiguration").lastNackError().length() > 5000, "whole");
    }

    @Test
    void aListenerRemovedFromTheServerIsDeletedAndItsRouteUnsubscribed() throws Exception {
        startAndAwaitFirst(bookinfo("1", "c1"));
        server.set(snapshot("2", List.of(listener("0.0.0.0_9080", 9080, "9080")), List.of(route("9080", "c1"),
                route("9090", "c9090"))));
        await(() -> holder.current().listener("0.0.0.0_9090") == null, WAIT, "listener 9090 deleted");
        await(() -> holder.current().resources().routes().get("9090") == null, WAIT, "route 9090 dropped");
        assertNotNull(holder.current().listener("0.0.0.0_9080"));
        assertEquals("c1", clusterFor(holder.current(), "9080", "/"));
        server.awaitRequest(r -> r.getTypeUrl().equals(RDS) && r.getResourceNamesList().equals(List.of("9080")),
                WAIT);
        await(() -> client.status().type("RouteConfiguration").subscribed().equals(List.of("9080")), WAIT,
                "the status shows the subscription");
    }

    @Test
    void aListenerSwitchingToARouteNotYetArrivedKeepsServingItsOldRouteWhileItWarms() throws Exception {
        // (an initial fetch timeout of 30 s, far from the bound below: a loaded machine's slow push stays within it)
        startAndAwaitFirst(bookinfo("1", "c1"), Duration.ofSeconds(30));
        // the listener now asks for "9080-v2", which the server does not have yet (it withholds RDS meanwhile)
        server.set(snapshot("2", "1", List.of(listener("0.0.0.0_9080", 9080, "9080-v2")),
                List.of(route("9080", "c1"))));
        server.awaitRequest(r -> r.getTypeUrl().equals(LDS) && r.getVersionInfo().equals("2"), WAIT);
        server.awaitRequest(r -> r.getTypeUrl().equals(RDS) && r.getResourceNamesList().contains("9080-v2"), WAIT);
        var chain = holder.current().listener("0.0.0.0_9080").listener().filterChains().get(0);
        assertEquals("c1", clusterFor(holder.current(), "9080", "/"), "the old listener and route serve");
        assertEquals("9080", ((dev.inmesh.api.config.listener.HttpConnectionManager) chain.filter())
                .rdsRouteConfigName());
        assertNull(holder.current().listener("0.0.0.0_9090"), "the deletion in the same response applied");

        // (java-control-plane answers RDS only when it has every name asked for, the old one included)
        server.set(snapshot("2", "2", List.of(listener("0.0.0.0_9080", 9080, "9080-v2")),
                List.of(route("9080", "c1"), route("9080-v2", "c2"))));
        long t0 = System.nanoTime();
        await(() -> "c2".equals(clusterFor(holder.current(), "9080-v2", "/")), WAIT, "the new route");
        assertTrue(System.nanoTime() - t0 < TimeUnit.SECONDS.toNanos(15), "warmed by the route's arrival, "
                + "not by the initial fetch timeout");
        var warmed = holder.current().listener("0.0.0.0_9080").listener().filterChains().get(0);
        assertEquals("9080-v2", ((dev.inmesh.api.config.listener.HttpConnectionManager) warmed.filter())
                .rdsRouteConfigName());
        // warm: the old route is no longer needed
        await(() -> client.status().type("RouteConfiguration").subscribed().equals(List.of("9080-v2")), WAIT,
                "unsubscribed from 9080");
        await(() -> holder.current().resources().routes().get("9080") == null, WAIT, "route 9080 dropped");
    }

    @Test
    void aRouteDroppedAndAskedForAgainWaitsForItsOwnInitialFetchTimeoutNotTheFirstSubscriptions() throws Exception {
        server.set(bookinfo("1", "c1"));
        client = start(options(AdsOptions.XdsServer.plaintext("127.0.0.1", server.port()))
                .withInitialFetchTimeout(Duration.ofSeconds(6)));
        client.start().await(WAIT.toSeconds(), TimeUnit.SECONDS);
        List<Listener> two = List.of(listener("0.0.0.0_9080", 9080, "9080"), listener("0.0.0.0_9090", 9090, "9090"));
        List<Listener> three = List.of(two.get(0), two.get(1), listener("0.0.0.0_7000", 7000, "7000"));
        List<RouteConfiguration> routes = List.of(route("9080", "c1"), route("9090", "c9090"));
        // a listener whose route the server does not have: it warms, route "7000" asked for
        server.set(snapshot("2", "1", three, routes));
        long t0 = System.nanoTime();
        await(() -> client.status().type("RouteConfiguration").subscribed().contains("7000"), WAIT, "7000 asked");
        // gone, and back before the first subscription's timeout ended
        server.set(snapshot("3", "1", two, routes));
        await(() -> !client.status().type("RouteConfiguration").subscribed().contains("7000"), WAIT, "7000 dropped");
        Thread.sleep(Math.max(0, 3000 - TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0)));
        server.set(snapshot("4", "1", three, routes));
        await(() -> client.status().type("RouteConfiguration").subscribed().contains("7000"), WAIT, "7000 again");
        long t1 = System.nanoTime();

        // past the first subscription's 6 s, before the second's (at least 2.4 s away: a stalled test thread must
        // not oversleep into it)
        Thread.sleep(Math.max(0, 6600 - TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0)));
        assertNull(holder.current().listener("0.0.0.0_7000"), "still warming: its route is asked for since 3 s");
        await(() -> holder.current().listener("0.0.0.0_7000") != null, WAIT, "served, its route empty");
        // (t1 was taken once the test saw the second subscription, up to a second after the client made it)
        assertTrue(System.nanoTime() - t1 > TimeUnit.MILLISECONDS.toNanos(5000), "after the second's own timeout");
    }

    @Test
    void aRouteTheServerNeverSendsIsServedEmptyAfterTheInitialFetchTimeoutUntilItArrives() throws Exception {
        server.set(snapshot("1", List.of(listener("0.0.0.0_7000", 7000, "7000")), List.of()));
        client = start(options(AdsOptions.XdsServer.plaintext("127.0.0.1", server.port()))
                .withInitialFetchTimeout(Duration.ofMillis(500)));
        long t0 = System.nanoTime();
        Future<Void> first = client.start();
        first.await(WAIT.toSeconds(), TimeUnit.SECONDS);
        assertTrue(first.succeeded());
        assertTrue(System.nanoTime() - t0 >= TimeUnit.MILLISECONDS.toNanos(450), "waited for the timeout");
        assertTrue(holder.ready());
        assertTrue(holder.current().routeTable("7000").config().virtualHosts().isEmpty());
        assertNull(clusterFor(holder.current(), "7000", "/"));

        server.set(snapshot("2", List.of(listener("0.0.0.0_7000", 7000, "7000")), List.of(route("7000", "c7"))));
        await(() -> "c7".equals(clusterFor(holder.current(), "7000", "/")), WAIT, "the late route");
    }

    @Test
    void theClientReconnectsToARestartedServerAndGetsBackInSync() throws Exception {
        startAndAwaitFirst(bookinfo("1", "c1"));
        int port = server.port();
        server.close();
        await(() -> !client.status().connected(), WAIT, "disconnected");
        // disconnected: the last good snapshot keeps serving
        assertEquals("c1", clusterFor(holder.current(), "9080", "/"));
        assertTrue(holder.ready());
        assertFalse(client.status().lastError().isEmpty());

        server = XdsTestServer.start(port);
        server.set(bookinfo("7", "c7"));
        await(() -> "c7".equals(clusterFor(holder.current(), "9080", "/")), WAIT, "resynced from the new server");
        // it asked again with the versions it held
        DiscoveryRequest lds = server.awaitRequest(r -> r.getTypeUrl().equals(LDS), WAIT);
        assertEquals("1", lds.getVersionInfo());
        assertTrue(server.requests.get(0).hasNode());
        await(() -> client.status().connected(), WAIT, "connected");
    }

    @Test
    void theSecondServerIsUsedWhileTheFirstIsDown() throws Exception {
        server.set(bookinfo("1", "c1"));
        int down = XdsTestServer.freePort();
        Future<Void> first = start(options(AdsOptions.XdsServer.plaintext("127.0.0.1", down),
                AdsOptions.XdsServer.plaintext("127.0.0.1", server.port()))).start();
        first.await(WAIT.toSeconds(), TimeUnit.SECONDS);
        assertTrue(first.succeeded());
        assertEquals("c1", clusterFor(holder.current(), "9080", "/"));
        assertEquals("127.0.0.1:" + server.port(), client.status().server());
    }

    @Test
    void withNoServerReachableTheFirstApplyWaitsTheInitialFetchTimeoutsAsEnvoysNotForever() throws Exception {
        server.close();
        int port = XdsTestServer.freePort(); // nothing listens there yet
        long begin = System.nanoTime();
        Future<Void> first = start(options(AdsOptions.XdsServer.plaintext("127.0.0.1", port))
                .withInitialFetchTimeout(Duration.ofMillis(300))).start();
        first.await(WAIT.toSeconds(), TimeUnit.SECONDS);
        assertTrue(first.succeeded(), () -> "first apply: " + first.cause());
        long tookMillis = Duration.ofNanos(System.nanoTime() - begin).toMillis();
        assertTrue(tookMillis >= 600, "CDS's timeout, then LDS's: " + tookMillis + " ms");
        assertTrue(holder.ready());
        assertFalse(client.status().connected());
        assertTrue(holder.current().resources().listeners().isEmpty());

        // the server comes up: the configuration arrives on the stream the client keeps trying
        server = XdsTestServer.start(port);
        server.set(bookinfo("1", "c1"));
        await(() -> "c1".equals(clusterFor(holder.current(), "9080", "/")), WAIT, "the configuration");
    }

    /** A snapshot of version {@code v}: clusters {@code clusters}, load assignments {@code endpoints}, c's route. */
    static Snapshot withClusters(String v, List<io.envoyproxy.envoy.config.cluster.v3.Cluster> clusters,
                                 List<io.envoyproxy.envoy.config.endpoint.v3.ClusterLoadAssignment> endpoints) {
        return Snapshot.create(clusters, v, endpoints, v, List.of(listener("0.0.0.0_9080", 9080, "9080")), v,
                List.of(route("9080", "c")), v, List.of(), v);
    }

    /**
     * Cluster c with a TCP health check, which a holder without Vert.x never runs: c warms, and the server's
     * initialization waits for it, while the test runs.
     */
    static io.envoyproxy.envoy.config.cluster.v3.Cluster checkedCluster() {
        return XdsFixtures.staticCluster("c", 9).toBuilder().addHealthChecks(XdsFixtures.parse(
                "{timeout: 1s, interval: 1s, unhealthy_threshold: 1, healthy_threshold: 1, tcp_health_check: {}}",
                io.envoyproxy.envoy.config.core.v3.HealthCheck.class)).build();
    }

    /**
     * A cluster whose version in force waits for its first health checks, and whose next version waits for its load
     * assignment: the version in force is dropped (no longer in the snapshot, in use or warming), as Envoy's update of
     * a warming cluster replaces it among its warming clusters, and the server's initialization waits for the next
     * version, as Envoy's init helper for a cluster CDS updates before it completes; here that version has no checks,
     * so its load assignment ends the initialization. The holder has no Vert.x: the first version's checks never run.
     */
    @Test
    void aWarmingClusterWhoseNextVersionWaitsForItsLoadAssignmentIsDroppedAndTheInitializationWaitsForTheNext()
            throws Exception {
        var checked = checkedCluster();
        startAndAwaitFirst(withClusters("1", List.of(checked), List.of()), Duration.ofSeconds(30));
        assertTrue(holder.current().clusterManager().clusters().get("c").warming());

        server.set(withClusters("2", List.of(XdsFixtures.edsCluster("c")), List.of()));
        await(() -> client.dynamicState().warmingClusters().containsKey("c"), WAIT, "the next version held");
        assertNull(holder.current().clusterManager().clusters().get("c"), "the version in force, still warming");
        assertFalse(holder.initialized().isComplete());
        assertFalse(holder.clustersInitialized(), "a cluster held: Envoy's server is PRE_INITIALIZING");

        server.set(withClusters("3", List.of(XdsFixtures.edsCluster("c")), List.of(XdsFixtures.endpoints("c", 1))));
        await(() -> holder.initialized().isComplete(), WAIT, "the initialization, by the next version");
        assertNotNull(holder.current().clusterManager().cluster("c"));
    }

    /**
     * As Envoy's mux fails every watch of a type whose response it rejects whole (onConfigUpdateFailed,
     * UpdateRejected), and an EDS cluster then ends its initialization with no hosts: a cluster held for its load
     * assignment while the server initializes stops waiting when the load assignment response cannot be decoded, and
     * so does the initialization, before any initial fetch timeout.
     */
    @Test
    @SuppressWarnings({"unchecked", "rawtypes"})
    void aLoadAssignmentResponseRejectedWholeEndsTheWaitOfAClusterHeldForItAndTheInitialization() throws Exception {
        var checked = checkedCluster();
        startAndAwaitFirst(withClusters("1", List.of(checked), List.of()), Duration.ofMinutes(5));
        assertFalse(holder.initialized().isComplete());

        // the load assignment "c" arrives as a Cluster: its type_url is not the response's
        List wrong = List.of(XdsFixtures.edsCluster("c"));
        server.set(withClusters("2", List.of(XdsFixtures.edsCluster("c")), wrong));
        DiscoveryRequest nack = server.awaitRequest(r -> r.hasErrorDetail() && r.getTypeUrl().equals(EDS), WAIT);
        assertTrue(nack.getErrorDetail().getMessage().contains("response is rejected"), nack.toString());
        await(() -> holder.initialized().isComplete(), WAIT, "the initialization, by the NACK");
        assertNotNull(holder.current().clusterManager().cluster("c"));
        assertTrue(holder.current().clusterManager().cluster("c").hosts().isEmpty());
    }

    static final Listener L9080 = listener("0.0.0.0_9080", 9080, "9080");
    static final Listener L7000 = listener("0.0.0.0_7000", 7000, "7000");

    /** Clusters {@code clusters} (version cv), listeners 9080 and 7000 (version 2), routes {@code routes} (rv). */
    static Snapshot with7000(String cv, io.envoyproxy.envoy.config.cluster.v3.Cluster c, String rv,
                             RouteConfiguration... routes) {
        return Snapshot.create(List.of(c), cv, List.of(), "1", List.of(L9080, L7000), "2", List.of(routes), rv,
                List.of(), "1");
    }

    /**
     * Starts on cluster c with health checks (warming, so the server initializes) and listener 9080, adds listener
     * 7000, whose route the server withholds (it warms), then gives c a version without checks, so that without the
     * listener the initialization would end. Returns whether listener 7000 was in the snapshot in force when the
     * initialization ended (null while it has not).
     */
    AtomicReference<Boolean> addAListenerWhileTheClustersInitialize(Duration timeout)
            throws Exception {
        startAndAwaitFirst(Snapshot.create(List.of(checkedCluster()), "1", List.of(), "1", List.of(L9080), "1",
                List.of(route("9080", "c")), "1", List.of(), "1"), timeout);
        assertFalse(holder.initialized().isComplete());
        var with7000 = new AtomicReference<Boolean>();
        holder.initialized().onComplete(ar -> with7000.set(holder.current().listener("0.0.0.0_7000") != null));

        server.set(with7000("1", checkedCluster(), "1", route("9080", "c")));
        await(() -> client.dynamicState().warmingListeners().containsKey("0.0.0.0_7000"), WAIT, "7000 warming");
        server.set(with7000("2", XdsFixtures.staticCluster("c", 9), "1", route("9080", "c")));
        await(() -> holder.current().clusterManager().cluster("c") != null, WAIT, "c warm, without checks");
        return with7000;
    }

    /**
     * As Envoy's server, whose init manager waits for each listener LDS adds before its workers start (the listener's
     * init target, itself waiting for its RDS subscription's): a listener added while the server initializes holds
     * the initialization (Mesh.start, /ready, the proxy's listeners) until its route configuration arrives, warming
     * meanwhile in the config dump.
     */
    @Test
    void aListenerAddedWhileTheServerInitializesHoldsTheInitializationUntilItsRouteArrives() throws Exception {
        var with7000 = addAListenerWhileTheClustersInitialize(Duration.ofSeconds(30));
        assertFalse(holder.initialized().isComplete(), "listener 7000 waits for its route");
        assertTrue(client.dynamicState().warmingListeners().containsKey("0.0.0.0_7000"));
        await(holder::clustersInitialized, WAIT, "only a listener held: Envoy's server is INITIALIZING");

        server.set(with7000("2", XdsFixtures.staticCluster("c", 9), "2", route("9080", "c"), route("7000", "c7")));
        await(() -> holder.initialized().isComplete(), WAIT, "the initialization, by the route");
        // the future reads complete before its callbacks have run on the event loop: wait for the callback
        await(() -> with7000.get() != null, WAIT, "the initialization's callback");
        assertEquals(Boolean.TRUE, with7000.get(), "listener 7000 in force when the initialization ended");
        assertEquals("c7", clusterFor(holder.current(), "7000", "/"));
        // the client's dump state is written beside the publication, not before it: wait for it
        await(() -> client.dynamicState().warmingListeners().isEmpty(), WAIT, "7000 no longer warming");
    }

    /**
     * As Envoy's RDS subscription, whose init target is ready on a rejected update ("allow server startup to
     * continue"): the listener's route rejected (NACKed) ends its wait, and the initialization's, the listener
     * serving no routes.
     */
    @Test
    void aListenerAddedWhileTheServerInitializesStopsHoldingItWhenItsRouteIsRejected() throws Exception {
        var with7000 = addAListenerWhileTheClustersInitialize(Duration.ofSeconds(30));
        assertFalse(holder.initialized().isComplete(), "listener 7000 waits for its route");

        server.set(with7000("2", XdsFixtures.staticCluster("c", 9), "2", route("9080", "c"), badRoute("7000")));
        server.awaitRequest(r -> r.hasErrorDetail() && r.getTypeUrl().equals(RDS), WAIT);
        await(() -> holder.initialized().isComplete(), WAIT, "the initialization, by the NACK");
        // the future reads complete before its callbacks have run on the event loop: wait for the callback
        await(() -> with7000.get() != null, WAIT, "the initialization's callback");
        assertEquals(Boolean.TRUE, with7000.get(), "listener 7000 in force when the initialization ended");
        assertTrue(holder.current().routeTable("7000").config().virtualHosts().isEmpty());
    }

    /**
     * As Envoy's RDS subscription, whose init target is ready at its initial_fetch_timeout: a route the server never
     * sends ends the listener's wait, and the initialization's, at that timeout, the listener serving no routes.
     * (Should c's change come after the 3 s, the listener is in force before it and this proves nothing, never
     * failing.)
     */
    @Test
    void aListenerAddedWhileTheServerInitializesStopsHoldingItAtItsRoutesInitialFetchTimeout() throws Exception {
        var with7000 = addAListenerWhileTheClustersInitialize(Duration.ofSeconds(3));
        await(() -> holder.initialized().isComplete(), WAIT, "the initialization, by the timeout");
        // the future reads complete before its callbacks have run on the event loop: wait for the callback
        await(() -> with7000.get() != null, WAIT, "the initialization's callback");
        assertEquals(Boolean.TRUE, with7000.get(), "listener 7000 in force when the initialization ended");
        assertTrue(holder.current().routeTable("7000").config().virtualHosts().isEmpty());
    }

    /**
     * Starts on cluster {@code c} and listener 9080, whose route the server withholds, and waits until the route is
     * asked for: the first configuration then waits for it alone.
     */
    void startWaitingForTheFirstRoute(io.envoyproxy.envoy.config.cluster.v3.Cluster c) throws Exception {
        server.set(Snapshot.create(List.of(c), "1", List.of(), "1", List.of(L9080), "1", List.of(), "1", List.of(),
                "1"));
        start(options(AdsOptions.XdsServer.plaintext("127.0.0.1", server.port()))
                .withInitialFetchTimeout(Duration.ofMinutes(5))).start();
        server.awaitRequest(r -> r.getTypeUrl().equals(RDS) && r.getResourceNamesList().contains("9080"), WAIT);
    }

    /**
     * As Envoy's server, whose cluster manager initializes once the clusters and their load assignments have arrived
     * (it asks for listeners only then) and whose init manager then waits for the listeners' routes: the server is
     * {@code INITIALIZING}, not {@code PRE_INITIALIZING}, while the first configuration waits for them alone.
     */
    @Test
    void whileTheFirstConfigurationWaitsOnlyForItsListenersRoutesTheServerIsInitializing() throws Exception {
        startWaitingForTheFirstRoute(XdsFixtures.staticCluster("c", 9));
        await(holder::clustersInitialized, WAIT, "Envoy's cluster manager initialized: INITIALIZING");
        assertFalse(holder.ready(), "the first configuration still waits for its route");
    }

    /**
     * A cluster with health checks, whose first round runs only once the first configuration is applied, keeps the
     * server {@code PRE_INITIALIZING} meanwhile, as Envoy's cluster manager waits for that round.
     */
    @Test
    void aClusterWithHealthChecksKeepsTheServerPreInitializingWhileTheFirstConfigurationWaits() throws Exception {
        startWaitingForTheFirstRoute(checkedCluster());
        assertFalse(holder.clustersInitialized(), "Envoy's cluster manager waits for the checks: PRE_INITIALIZING");
        assertFalse(holder.ready());
    }

    @Test
    void nothingIsAppliedBeforeTheRoutesOfTheListenersArrive() throws Exception {
        // RDS is absent from the server at first; the client waits (until the initial fetch timeout)
        server.set(snapshot("1", List.of(listener("0.0.0.0_9080", 9080, "9080")), List.of()));
        Future<Void> first = start(options(AdsOptions.XdsServer.plaintext("127.0.0.1", server.port()))).start();
        server.awaitRequest(r -> r.getTypeUrl().equals(RDS), WAIT);
        Thread.sleep(200);
        assertFalse(holder.ready());
        assertFalse(first.isComplete());
        server.set(snapshot("2", List.of(listener("0.0.0.0_9080", 9080, "9080")), List.of(route("9080", "c1"))));
        first.await(WAIT.toSeconds(), TimeUnit.SECONDS);
        assertTrue(holder.ready());
        assertEquals("c1", clusterFor(holder.current(), "9080", "/"));
    }

    @Test
    void aZeroInitialFetchTimeoutWaitsForTheRoutesWithNoEndAsEnvoysZeroDoes() throws Exception {
        List<MeshSnapshot> published = new CopyOnWriteArrayList<>();
        holder.onUpdate(published::add);
        server.set(snapshot("1", List.of(listener("0.0.0.0_9080", 9080, "9080")), List.of()));
        Future<Void> first = start(options(AdsOptions.XdsServer.plaintext("127.0.0.1", server.port()))
                .withInitialFetchTimeout(Duration.ZERO)).start();
        server.awaitRequest(r -> r.getTypeUrl().equals(RDS) && r.getResourceNamesList().contains("9080"), WAIT);
        await(() -> "1".equals(client.status().type("Listener").ackedVersion()), WAIT, "LDS ACK");
        server.set(snapshot("2", List.of(listener("0.0.0.0_9080", 9080, "9080")), List.of(route("9080", "c1"))));
        first.await(WAIT.toSeconds(), TimeUnit.SECONDS);
        assertTrue(first.succeeded(), () -> "first apply: " + first.cause());
        // never served empty: the first snapshot published already has the route
        assertEquals("c1", clusterFor(published.get(0), "9080", "/"), "published: " + published.size());
    }

    @Test
    void aListenerWhoseRdsConfigSourceSaysZeroWarmsUntilItsRouteArrivesAsIstiosListenersDo() throws Exception {
        startAndAwaitFirst(bookinfo("1", "c1"));
        // istiod's connection managers say rds.config_source.initial_fetch_timeout: 0s (no timeout); 7001's says
        // nothing, so the client's 2 s applies to it. The server withholds both routes.
        Listener zero = XdsFixtures.parse("""
                name: "0.0.0.0_7000"
                address: {socket_address: {address: 0.0.0.0, port_value: 7000}}
                filter_chains:
                - filters:
                  - name: envoy.filters.network.http_connection_manager
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                      stat_prefix: outbound_7000
                      rds: {route_config_name: "a-zero", config_source: {ads: {}, initial_fetch_timeout: 0s}}
                      http_filters:
                      - name: envoy.filters.http.router
                        typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
                """, Listener.class);
        List<Listener> listeners = new java.util.ArrayList<>(bookinfo("1", "c1").listeners().resources().values());
        listeners.add(zero);
        listeners.add(listener("0.0.0.0_7001", 7001, "b-default"));
        server.set(snapshot("2", "1", listeners, List.of(route("9080", "c1"), route("9090", "c9090"))));
        await(() -> holder.current().listener("0.0.0.0_7001") != null, WAIT, "7001, by the client's timeout");
        assertTrue(holder.current().routeTable("b-default").config().virtualHosts().isEmpty());
        assertNull(holder.current().listener("0.0.0.0_7000"), "0s: still warming, as in Envoy");

        server.set(snapshot("2", "2", listeners, List.of(route("9080", "c1"), route("9090", "c9090"),
                route("a-zero", "c7"), route("b-default", "c8"))));
        await(() -> holder.current().listener("0.0.0.0_7000") != null, WAIT, "7000, warmed by its route");
        assertEquals("c7", clusterFor(holder.current(), "a-zero", "/"));
    }

    /** A PING's timeout in these tests, shorter than Istio's 10 s so that a lost one ends its stream sooner. */
    private static final Duration KEEPALIVE_TIMEOUT = Duration.ofSeconds(2);

    @Test
    void keepalivePingsKeepAHealthyStreamOpen() throws Exception {
        server.set(bookinfo("1", "c1"));
        Future<Void> first = start(options(AdsOptions.XdsServer.plaintext("127.0.0.1", server.port()))
                .withKeepalive(Duration.ofMillis(20))).start();
        first.await(WAIT.toSeconds(), TimeUnit.SECONDS);
        Thread.sleep(500);
        assertTrue(client.status().connected());
        assertEquals(1, server.requests.stream().filter(DiscoveryRequest::hasNode).count(), "one stream only");
        assertTrue(client.status().lastError().isEmpty(), client.status().lastError());
    }

    @Test
    void theFirstKeepalivePingOfEveryStreamIsAnswered() throws Exception {
        // A stream's first PING goes from the client's worker context: written there, its ACK could be read before
        // Vert.x recorded the PING as awaiting one, was dropped, and the stream ended as if the server were gone.
        server.set(bookinfo("1", "c1"));
        List<AdsClient> clients = new java.util.ArrayList<>();
        try {
            for (int i = 0; i < 16; i++) {
                AdsClient c = new AdsClient(vertx, options(AdsOptions.XdsServer.plaintext("127.0.0.1", server.port()))
                        .withKeepalive(Duration.ofMillis(50), KEEPALIVE_TIMEOUT),
                        new dev.inmesh.runtime.snapshot.SnapshotHolder());
                clients.add(c);
                c.start().await(WAIT.toSeconds(), TimeUnit.SECONDS);
            }
            Thread.sleep(KEEPALIVE_TIMEOUT.toMillis() + 1_000);
            for (AdsClient c : clients) {
                assertTrue(c.status().lastError().isEmpty(), c.status().lastError());
            }
            assertEquals(clients.size(), server.requests.stream().filter(DiscoveryRequest::hasNode).count(),
                    "one stream each");
        } finally {
            for (AdsClient c : clients) {
                c.close().await(10, TimeUnit.SECONDS);
            }
        }
    }

    @Test
    void aStreamWhosePingGoesUnansweredIsEndedAndReopenedWithoutAnErrorLoggedByVertx() throws Exception {
        server.set(bookinfo("1", "c1"));
        java.util.concurrent.atomic.AtomicBoolean silent = new java.util.concurrent.atomic.AtomicBoolean();
        java.util.concurrent.atomic.AtomicInteger connections = new java.util.concurrent.atomic.AtomicInteger();
        // a relay to the server that can stop passing the server's bytes on its first connection: its PING ACKs are
        // lost; a reconnect, however soon its back-off makes it, gets a connection that passes them
        int relay = vertx.createNetServer().connectHandler(in -> {
            boolean first = connections.incrementAndGet() == 1;
            in.pause();
            vertx.createNetClient().connect(server.port(), "127.0.0.1").onSuccess(out -> {
                in.handler(out::write);
                out.handler(b -> {
                    if (!(first && silent.get())) {
                        in.write(b);
                    }
                });
                in.closeHandler(v -> out.close());
                out.closeHandler(v -> in.close());
                in.resume();
            }).onFailure(e -> in.close());
        }).listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS).actualPort();
        List<java.util.logging.LogRecord> errors = new CopyOnWriteArrayList<>();
        java.util.logging.Logger vertxLog = java.util.logging.Logger.getLogger("io.vertx");
        java.util.logging.Handler capture = new java.util.logging.Handler() {
            @Override
            public void publish(java.util.logging.LogRecord r) {
                if (r.getLevel().intValue() >= java.util.logging.Level.WARNING.intValue()) {
                    errors.add(r);
                }
            }

            @Override
            public void flush() {}

            @Override
            public void close() {}
        };
        vertxLog.addHandler(capture);
        try {
            start(options(AdsOptions.XdsServer.plaintext("127.0.0.1", relay)).withKeepalive(Duration.ofMillis(100),
                    KEEPALIVE_TIMEOUT)).start().await(WAIT.toSeconds(), TimeUnit.SECONDS);
            silent.set(true);
            await(() -> client.status().lastError().contains("keepalive PING unanswered for 2000 ms"), WAIT,
                    "the ping's timeout");
            await(() -> client.status().connected(), WAIT, "a new stream");
            Thread.sleep(200);
            assertEquals(List.of(), errors.stream().map(r -> r.getLoggerName() + ": " + r.getMessage()
                    + (r.getThrown() == null ? "" : " " + r.getThrown())).toList());
        } finally {
            vertxLog.removeHandler(capture);
        }
    }

    @Test
    void aCloseStepThatNeverEndsIsLeftAfterItsBoundAndOneThatFailsDoesNotFailTheClose() throws Exception {
        io.vertx.core.Promise<Void> never = io.vertx.core.Promise.promise();
        long t0 = System.nanoTime();
        Future<Void> bounded = AdsClient.within(vertx, never.future(), 100, "a stuck step");
        bounded.await(10, TimeUnit.SECONDS);
        assertTrue(bounded.succeeded());
        assertTrue(System.nanoTime() - t0 >= TimeUnit.MILLISECONDS.toNanos(90), "waited for the bound");
        Future<Void> failed = AdsClient.within(vertx, Future.failedFuture("refused"), 60_000, "a failed step");
        failed.await(10, TimeUnit.SECONDS);
        assertTrue(failed.succeeded(), "at once, without waiting for the bound");
    }

    @Test
    void closingLeavesTheLastSnapshotServing() throws Exception {
        startAndAwaitFirst(bookinfo("1", "c1"));
        client.close().await(10, TimeUnit.SECONDS);
        client.close().await(10, TimeUnit.SECONDS);
        assertFalse(client.status().connected());
        assertEquals("c1", clusterFor(holder.current(), "9080", "/"));
        client = null;
    }

    @Test
    void aNewListenerWhoseRouteIsRejectedStopsWarmingAndServesItEmpty() throws Exception {
        // (an initial fetch timeout of 30 s, far from the bound below: a loaded machine's slow push stays within it)
        startAndAwaitFirst(bookinfo("1", "c1"), Duration.ofSeconds(30));
        List<Listener> listeners = new java.util.ArrayList<>(bookinfo("1", "c1").listeners().resources().values());
        listeners.add(listener("0.0.0.0_7000", 7000, "7000"));
        server.set(snapshot("2", listeners, List.of(route("9080", "c1"), route("9090", "c9090"), badRoute("7000"))));
        DiscoveryRequest nack = server.awaitRequest(DiscoveryRequest::hasErrorDetail, WAIT);
        assertTrue(nack.getErrorDetail().getMessage().contains("RouteConfiguration \"7000\""), nack.toString());
        long t0 = System.nanoTime();
        // as Envoy: a rejected update ends the listener's warming; with no good version, its routes are empty
        await(() -> holder.current().listener("0.0.0.0_7000") != null, WAIT, "listener 7000 warmed");
        assertTrue(System.nanoTime() - t0 < TimeUnit.SECONDS.toNanos(15), "by the NACK, not a timeout");
        assertTrue(holder.current().routeTable("7000").config().virtualHosts().isEmpty());
        assertEquals("c1", clusterFor(holder.current(), "9080", "/"));
    }

    @Test
    @SuppressWarnings({"unchecked", "rawtypes"})
    void aResourceThatCannotBeDecodedRejectsTheWholeResponseAndDeletesNothing() throws Exception {
        startAndAwaitFirst(bookinfo("1", "c1"));
        // a RouteConfiguration among the listeners: its type_url is not the response's
        List wrong = List.of(listener("0.0.0.0_9080", 9080, "9080-v2"), route("0.0.0.0_9090", "x"));
        server.set(snapshot("2", "1", (List<Listener>) wrong, List.of(route("9080", "c1"), route("9090", "c9090"))));
        DiscoveryRequest nack = server.awaitRequest(DiscoveryRequest::hasErrorDetail, WAIT);
        assertEquals(LDS, nack.getTypeUrl());
        assertEquals("1", nack.getVersionInfo());
        await(() -> client.status().type("Listener").nacked(), WAIT, "the NACK in the status");
        Thread.sleep(200);
        // as Envoy: nothing of the response applied, nothing deleted, no new route asked for
        assertNotNull(holder.current().listener("0.0.0.0_9090"));
        assertEquals("c9090", clusterFor(holder.current(), "9090", "/"));
        assertEquals(List.of("9080", "9090"), client.status().type("RouteConfiguration").subscribed());
        String detail = nack.getErrorDetail().getMessage();
        assertTrue(detail.contains("resources[1]: type_url"), detail);
        assertTrue(detail.contains("the whole Listener response is rejected"), detail);
    }

    /** Listeners and routes of bookinfo, with {@code clusters}, all at {@code version}. */
    Snapshot withClusters(String version, List<io.envoyproxy.envoy.config.cluster.v3.Cluster> clusters) {
        Snapshot b = bookinfo("1", "c1");
        return Snapshot.create(clusters, version, List.of(), version,
                List.copyOf(b.listeners().resources().values()), "1", List.copyOf(b.routes().resources().values()),
                "1", List.of(), version);
    }

    @Test
    void aClusterFailingEnvoysProtoConstraintsRejectsTheWholeResponseAndNothingOfItApplies() throws Exception {
        startAndAwaitFirst(withClusters("1", List.of(staticCluster("c1", 9001), staticCluster("c2", 9002))));
        // c2 changed, and c9 with a connect_timeout of 0s, which Envoy's API refuses (gt: 0s)
        var c9 = staticCluster("c9", 9009).toBuilder().setConnectTimeout(com.google.protobuf.Duration
                .getDefaultInstance()).build();
        server.set(withClusters("2", List.of(staticCluster("c1", 9001), staticCluster("c2", 9012), c9)));

        DiscoveryRequest nack = server.awaitRequest(r -> r.getTypeUrl().equals(CDS) && r.hasErrorDetail(), WAIT);
        assertEquals("1", nack.getVersionInfo(), "the last version accepted");
        String detail = nack.getErrorDetail().getMessage();
        assertTrue(detail.startsWith("Cluster \"c9\": connect_timeout: 0s (expected: > 0s)"), detail);
        assertTrue(detail.contains("the whole Cluster response is rejected"), detail);
        await(() -> client.status().type("Cluster").nacked(), WAIT, "the NACK in the status");
        // as Envoy: c2's change not applied, c9 not added, the clusters' version kept
        MeshSnapshot now = holder.current();
        assertEquals(9002, now.cluster("c2").loadAssignment().endpoints().get(0).lbEndpoints().get(0).address()
                .port());
        assertNull(now.cluster("c9"));
        assertEquals("1", now.resources().version(ResourceType.CLUSTER, "c2").versionInfo());
        assertEquals("1", client.dynamicState().typeVersions().get(ResourceType.CLUSTER));
        assertEquals("1", client.status().type("Cluster").ackedVersion());
        assertNull(client.dynamicState().failure(ResourceType.CLUSTER, "c9"), "no error_state: nothing applied");
    }
}
