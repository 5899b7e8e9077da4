package dev.inmesh.runtime.xds.ads;

import static dev.inmesh.runtime.xds.ads.XdsFixtures.await;
import static dev.inmesh.runtime.xds.ads.XdsFixtures.clusterFor;
import static dev.inmesh.runtime.xds.ads.XdsFixtures.edsCluster;
import static dev.inmesh.runtime.xds.ads.XdsFixtures.endpoints;
import static dev.inmesh.runtime.xds.ads.XdsFixtures.inlineListener;
import static dev.inmesh.runtime.xds.ads.XdsFixtures.listener;
import static dev.inmesh.runtime.xds.ads.XdsFixtures.route;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.inmesh.runtime.admin.AdminServer;
import dev.inmesh.runtime.xds.EnvoyConfigReader;
import dev.inmesh.runtime.xds.EnvoyJson;
import dev.inmesh.runtime.xds.ResourceBundle;
import dev.inmesh.runtime.xds.ResourceType;
import io.envoyproxy.controlplane.cache.v3.Snapshot;
import io.envoyproxy.envoy.config.listener.v3.Listener;
import io.vertx.core.Future;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** What {@code /config_dump} shows of an ADS client's updates: rejected listeners, warming listeners and clusters. */
class AdsConfigDumpTest extends AdsRig {
    static final Duration WAIT = Duration.ofSeconds(20);
    private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
    private AdminServer admin;

    void start(Snapshot first) throws Exception {
        start(first, false);
    }

    /** Starts a client on {@code first}, over delta xDS when {@code delta}, and an admin server on its state. */
    void start(Snapshot first, boolean delta) throws Exception {
        server.set(first);
        client = new AdsClient(vertx, AdsOptions.of(NodeOptions.of("p", "default", "10.0.0.1"),
                AdsOptions.XdsServer.plaintext("127.0.0.1", server.port()))
                .withInitialFetchTimeout(Duration.ofSeconds(5))
                .withBackoff(Duration.ofMillis(50), Duration.ofMillis(500)).withDelta(delta), holder);
        Future<Void> applied = client.start();
        applied.await(WAIT.toSeconds(), TimeUnit.SECONDS);
        assertTrue(applied.succeeded(), () -> String.valueOf(applied.cause()));
        admin = AdminServer.builder(vertx).snapshots(holder).dynamicState(client::dynamicState)
                .mount(AdminServer.Mount.of("127.0.0.1", 0, AdminServer.Endpoint.CONFIG_DUMP)).build();
        admin.start().await(10, TimeUnit.SECONDS);
    }

    String get(String path) throws Exception {
        HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + admin.port(0)
                + path)).timeout(Duration.ofSeconds(10)).build(), HttpResponse.BodyHandlers.ofString());
        assertEquals(200, r.statusCode(), r.body());
        return r.body();
    }

    /** The entries of {@code /config_dump?resource=FIELD}, by the name at {@code path} in each. */
    Map<String, JsonNode> entries(String field, String... path) throws Exception {
        Map<String, JsonNode> out = new LinkedHashMap<>();
        for (JsonNode e : EnvoyJson.tree(get("/config_dump?resource=" + field)).path("configs")) {
            JsonNode n = e;
            for (String p : path) {
                n = n.path(p);
            }
            out.put(n.asText(), e);
        }
        return out;
    }

    static Snapshot snapshot(String version, List<io.envoyproxy.envoy.config.cluster.v3.Cluster> clusters,
                             List<io.envoyproxy.envoy.config.endpoint.v3.ClusterLoadAssignment> endpoints,
                             List<Listener> listeners,
                             List<io.envoyproxy.envoy.config.route.v3.RouteConfiguration> routes) {
        return Snapshot.create(clusters, version, endpoints, version, listeners, version, routes, version, List.of(),
                version);
    }

    /** The listener of a dump's typed {@code Any}. */
    static Listener unpacked(JsonNode any) {
        com.fasterxml.jackson.databind.node.ObjectNode fields = any.deepCopy();
        fields.remove("@type");
        return XdsFixtures.parse(fields.toString(), Listener.class);
    }

    /** A listener whose inline route table has a regular expression RE2 does not compile. */
    static Listener badRegexListener(String name, int port) {
        return inlineListener(name, port, "inline-" + port, "{safe_regex: {regex: \"a(\"}}", "c1");
    }

    @Test
    void aRejectedListenerHasAnErrorStateBesideTheActiveStateOfItsLastGoodVersionUntilAnUpdateIsAccepted()
            throws Exception {
        Listener good = inlineListener("0.0.0.0_8080", 8080, "inline-8080", "c1");
        start(snapshot("1", List.of(edsCluster("c1")), List.of(endpoints("c1", 1)), List.of(good), List.of()));
        Instant before = Instant.now();

        // 8080 now names an unknown cluster (rejected as the snapshot is compiled), and a new 7000 does not parse
        Listener unknownCluster = inlineListener("0.0.0.0_8080", 8080, "inline-8080", "nope");
        server.set(snapshot("2", List.of(edsCluster("c1")), List.of(endpoints("c1", 1)),
                List.of(unknownCluster, badRegexListener("0.0.0.0_7000", 7000)), List.of()));
        await(() -> client.dynamicState().failure(ResourceType.LISTENER, "0.0.0.0_7000") != null, WAIT, "NACK");

        Map<String, JsonNode> listeners = entries("dynamic_listeners", "name");
        assertEquals(List.of("0.0.0.0_8080", "0.0.0.0_7000"), List.copyOf(listeners.keySet()));
        JsonNode kept = listeners.get("0.0.0.0_8080");
        assertEquals("1", kept.path("active_state").path("version_info").asText(), "the last good version serves");
        assertEquals(good, unpacked(kept.path("active_state").path("listener")));
        JsonNode error = kept.path("error_state");
        assertEquals(unknownCluster, unpacked(error.path("failed_configuration")), "the listener rejected");
        assertTrue(error.path("details").asText().contains("unknown cluster 'nope'"), error.toString());
        assertEquals("2", error.path("version_info").asText());
        assertFalse(Instant.parse(error.path("last_update_attempt").asText()).isBefore(before.minusSeconds(1)));
        JsonNode neverGood = listeners.get("0.0.0.0_7000");
        assertTrue(neverGood.path("active_state").isMissingNode(), "no good version: only the error");
        assertTrue(neverGood.path("error_state").path("details").asText().contains("a("), neverGood.toString());
        assertEquals("type.googleapis.com/envoy.config.listener.v3.Listener",
                neverGood.path("error_state").path("failed_configuration").path("@type").asText());
        assertEquals("c1", AdsClusterTest.inlineClusterFor(holder.current(), "0.0.0.0_8080"));

        // the dump still loads back into what serves
        ResourceBundle back = EnvoyConfigReader.read(get("/config_dump?include_eds"));
        assertEquals(holder.current().resources().listeners(), back.listeners());
        assertEquals(holder.current().resources().clusters(), back.clusters());

        // accepted again (8080 as it was, 7000 gone): the error states are cleared, as Envoy's
        server.set(snapshot("3", List.of(edsCluster("c1")), List.of(endpoints("c1", 1)), List.of(good), List.of()));
        await(() -> "3".equals(client.status().type("Listener").ackedVersion()), WAIT, "ACK of 3");
        await(() -> client.dynamicState().failures().isEmpty(), WAIT, "error states cleared");
        listeners = entries("dynamic_listeners", "name");
        assertEquals(List.of("0.0.0.0_8080"), List.copyOf(listeners.keySet()));
        assertTrue(listeners.get("0.0.0.0_8080").path("error_state").isMissingNode());
    }

    @Test
    void aListenerWaitingForItsNewRouteIsDumpedWarmingBesideTheVersionServing() throws Exception {
        start(snapshot("1", List.of(), List.of(), List.of(listener("0.0.0.0_9080", 9080, "9080")),
                List.of(route("9080", "c1"))));

        // the listener now asks for "9080-v2", which the server does not have yet
        server.set(Snapshot.create(List.of(), "1", List.of(), "1", List.of(listener("0.0.0.0_9080", 9080,
                "9080-v2")), "2", List.of(route("9080", "c1")), "1", List.of(), "1"));
        await(() -> client.dynamicState().warmingListeners().containsKey("0.0.0.0_9080"), WAIT, "warming");

        JsonNode entry = entries("dynamic_listeners", "name").get("0.0.0.0_9080");
        assertEquals("1", entry.path("active_state").path("version_info").asText());
        assertEquals("2", entry.path("warming_state").path("version_info").asText());
        assertTrue(entry.path("warming_state").path("listener").toString().contains("9080-v2"), entry.toString());
        assertEquals("c1", clusterFor(holder.current(), "9080", "/"), "the old listener serves");
        ResourceBundle back = EnvoyConfigReader.read(get("/config_dump"));
        assertEquals(holder.current().resources().listeners(), back.listeners(), "the warming one is left out");

        // (java-control-plane answers RDS only when it has every name asked for, the old one included)
        server.set(Snapshot.create(List.of(), "1", List.of(), "1", List.of(listener("0.0.0.0_9080", 9080,
                "9080-v2")), "2", List.of(route("9080", "c1"), route("9080-v2", "c2")), "2", List.of(), "1"));
        await(() -> client.dynamicState().warmingListeners().isEmpty(), WAIT, "warmed");
        entry = entries("dynamic_listeners", "name").get("0.0.0.0_9080");
        assertEquals("2", entry.path("active_state").path("version_info").asText());
        assertTrue(entry.path("warming_state").isMissingNode(), entry.toString());
    }

    @Test
    void aNewEdsClusterWaitingForItsEndpointsIsDumpedAsAWarmingCluster() throws Exception {
        start(snapshot("1", List.of(edsCluster("c1")), List.of(endpoints("c1", 1)),
                List.of(listener("0.0.0.0_9080", 9080, "9080")), List.of(route("9080", "c1"))));

        // c2 is new; the server withholds EDS (it answers only when it has every name asked for)
        server.set(snapshot("2", List.of(edsCluster("c1"), edsCluster("c2")), List.of(endpoints("c1", 1)),
                List.of(listener("0.0.0.0_9080", 9080, "9080")), List.of(route("9080", "c1"))));
        await(() -> client.dynamicState().warmingClusters().containsKey("c2"), WAIT, "c2 warming");

        assertEquals(List.of("c2"), List.copyOf(entries("dynamic_warming_clusters", "cluster", "name").keySet()));
        JsonNode warming = entries("dynamic_warming_clusters", "cluster", "name").get("c2");
        assertEquals("2", warming.path("version_info").asText());
        assertEquals(List.of("c1"), List.copyOf(entries("dynamic_active_clusters", "cluster", "name").keySet()));
        assertNull(holder.current().cluster("c2"));
        ResourceBundle back = EnvoyConfigReader.read(get("/config_dump?include_eds"));
        assertEquals(holder.current().resources().clusters(), back.clusters(), "the warming one is left out");
        // and counted as Envoy's cluster manager counts it, beside the active ones
        var registry = new io.micrometer.core.instrument.simple.SimpleMeterRegistry();
        holder.stats().bind(registry);
        assertEquals(1.0, registry.get("envoy_cluster_manager_warming_clusters").gauge().value());
        assertEquals(1.0, registry.get("envoy_cluster_manager_active_clusters").gauge().value());
    }

    @Test
    void theDumpsVersionInfoIsThatOfTheLastResponseThatChangedSomethingEvenADeletionAsEnvoysIs() throws Exception {
        Listener l9080 = listener("0.0.0.0_9080", 9080, "9080");
        Listener l9081 = listener("0.0.0.0_9081", 9081, "9080");
        start(snapshot("1", List.of(edsCluster("c1"), edsCluster("c2")), List.of(endpoints("c1", 1),
                endpoints("c2", 1)), List.of(l9080, l9081), List.of(route("9080", "c1"))));
        assertEquals("1", EnvoyJson.tree(get("/config_dump")).path("configs").get(1).path("version_info").asText());

        // version 2 only deletes: c2 and 9081 go, what stays keeps its version 1
        server.set(snapshot("2", List.of(edsCluster("c1")), List.of(endpoints("c1", 1)), List.of(l9080),
                List.of(route("9080", "c1"))));
        await(() -> "2".equals(client.status().type("Listener").ackedVersion())
                && "2".equals(client.status().type("Cluster").ackedVersion()), WAIT, "ACK of 2");
        JsonNode configs = EnvoyJson.tree(get("/config_dump")).path("configs");
        assertEquals("2", configs.get(1).path("version_info").asText(), "clusters: " + configs.get(1));
        assertEquals("2", configs.get(2).path("version_info").asText(), "listeners: " + configs.get(2));
        assertEquals("1", entries("dynamic_active_clusters", "cluster", "name").get("c1").path("version_info")
                .asText(), "c1 unchanged");

        // version 3 changes nothing: as Envoy's, the version shown stays that of the last change
        server.set(snapshot("3", List.of(edsCluster("c1")), List.of(endpoints("c1", 1)), List.of(l9080),
                List.of(route("9080", "c1"))));
        await(() -> "3".equals(client.status().type("Listener").ackedVersion())
                && "3".equals(client.status().type("Cluster").ackedVersion()), WAIT, "ACK of 3");
        configs = EnvoyJson.tree(get("/config_dump")).path("configs");
        assertEquals("2", configs.get(1).path("version_info").asText(), "clusters: " + configs.get(1));
        assertEquals("2", configs.get(2).path("version_info").asText(), "listeners: " + configs.get(2));
    }

    @Test
    void overDeltaXdsEachResourceShowsItsOwnVersionAndTheDumpTheLastChangingResponsesSystemVersion()
            throws Exception {
        Listener l9080 = listener("0.0.0.0_9080", 9080, "9080");
        start(snapshot("1", List.of(edsCluster("c1"), edsCluster("c2")), List.of(endpoints("c1", 1),
                endpoints("c2", 1)), List.of(l9080), List.of(route("9080", "c1"))), true);
        String c1 = server.deltaResponses.stream().flatMap(r -> r.getResourcesList().stream())
                .filter(r -> r.getName().equals("c1")).findFirst().orElseThrow().getVersion();
        assertFalse(c1.isEmpty());
        JsonNode dumped = entries("dynamic_active_clusters", "cluster", "name").get("c1");
        assertEquals(c1, dumped.path("version_info").asText(), "the resource's own version: " + dumped);
        assertFalse(dumped.path("last_updated").asText().isEmpty());
        assertEquals("1", EnvoyJson.tree(get("/config_dump")).path("configs").get(1).path("version_info").asText());

        // version 2 removes c2 (removed_resources): c1 keeps its version, the dump's is 2
        server.set(snapshot("2", List.of(edsCluster("c1")), List.of(endpoints("c1", 1)), List.of(l9080),
                List.of(route("9080", "c1"))));
        await(() -> "2".equals(client.status().type("Cluster").ackedVersion()), WAIT, "ACK of 2");
        Map<String, JsonNode> clusters = entries("dynamic_active_clusters", "cluster", "name");
        assertEquals(List.of("c1"), List.copyOf(clusters.keySet()));
        assertEquals(c1, clusters.get("c1").path("version_info").asText());
        assertEquals("2", EnvoyJson.tree(get("/config_dump")).path("configs").get(1).path("version_info").asText());
    }
}
