package dev.inmesh.interception.proxy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.inmesh.runtime.admin.AdminServer;
import dev.inmesh.runtime.xds.EnvoyJson;
import dev.inmesh.runtime.xds.ads.AdsOptions;
import dev.inmesh.runtime.xds.ads.NodeOptions;
import io.envoyproxy.envoy.config.cluster.v3.Cluster;
import io.envoyproxy.envoy.config.listener.v3.Listener;
import io.envoyproxy.envoy.config.route.v3.RouteConfiguration;
import io.envoyproxy.envoy.service.discovery.v3.DiscoveryRequest;
import io.vertx.core.Vertx;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The standalone proxy with its configuration from a control plane over ADS (java-control-plane's server, as istiod
 * would serve it): listeners are bound as LDS sends them, changed and removed as it changes them, routes follow RDS;
 * a bootstrap's static resources serve beside the dynamic ones, its static listener taking its routes from RDS; a
 * listener that cannot be bound is NACKed by name, its last good version serving on.
 */
@Timeout(60)
class ProxyXdsTest {
    @TempDir
    Path dir;
    private TestControlPlane controlPlane;
    private StandaloneProxy proxy;
    private Vertx backends;
    private volatile int adminPort;

    @BeforeEach
    void startControlPlane() throws Exception {
        controlPlane = new TestControlPlane(new InetSocketAddress("127.0.0.1", 0));
    }

    @AfterEach
    void stop() throws Exception {
        if (proxy != null) {
            proxy.close();
        }
        controlPlane.close();
        if (backends != null) {
            backends.close().await(10, TimeUnit.SECONDS);
        }
    }

    private AdsOptions ads() {
        return AdsOptions.of(new NodeOptions("app-1", "default", "127.0.0.1", null, null, null, null, Map.of(), "app",
                "REDIRECT", null, Map.of()), AdsOptions.XdsServer.plaintext("127.0.0.1", controlPlane.port()));
    }

    private void serve(String version, List<String> listeners, List<String> routes, List<String> clusters)
            throws Exception {
        controlPlane.serve(version, TestControlPlane.parse(listeners, Listener.class),
                TestControlPlane.parse(routes, RouteConfiguration.class), TestControlPlane.parse(clusters,
                        Cluster.class), List.of());
    }

    private int backend(String answer) throws Exception {
        if (backends == null) {
            backends = Vertx.vertx();
        }
        return ProxyConfigUpdateTest.backend(backends, answer);
    }

    @Test
    void listenersAreBoundChangedAndRemovedAsTheControlPlaneSendsThem() throws Exception {
        int first = LoopbackProxy.freePort();
        int second = LoopbackProxy.freePort();
        serve("1", List.of(ProxyConfigUpdateTest.direct("first", first, "one")), List.of(), List.of());
        proxy = StandaloneProxy.start(new StandaloneProxy.Settings(null, -1, -1, 1, null, AdminHook.NONE)
                .withXds(ads()));
        ProxyConfigUpdateTest.awaitAnswer(first, "one");
        assertTrue(proxy.snapshots().ready());

        serve("2", List.of(ProxyConfigUpdateTest.direct("first", first, "two"),
                ProxyConfigUpdateTest.direct("second", second, "second")), List.of(), List.of());
        ProxyConfigUpdateTest.awaitAnswer(first, "two");
        ProxyConfigUpdateTest.awaitAnswer(second, "second");

        serve("3", List.of(ProxyConfigUpdateTest.direct("second", second, "second")), List.of(), List.of());
        ProxyConfigUpdateTest.awaitRefused(first);
        ProxyConfigUpdateTest.awaitAnswer(second, "second");
    }

    @Test
    void rdsRoutesAndCdsClustersReachAnOpenConnection() throws Exception {
        int port = LoopbackProxy.freePort();
        int a = backend("from a");
        int b = backend("from b");
        String listener = ProxyConfigUpdateTest.rdsListener(port);
        serve("1", List.of(listener), List.of(ProxyConfigUpdateTest.routes("a")),
                List.of(ProxyConfigUpdateTest.cluster("a", a)));
        proxy = StandaloneProxy.start(new StandaloneProxy.Settings(null, -1, -1, 1, null, AdminHook.NONE)
                .withXds(ads()));
        ProxyConfigUpdateTest.awaitAnswer(port, "from a");
        try (ProxyConfigUpdateTest.Client c = new ProxyConfigUpdateTest.Client(port)) {
            assertEquals("from a", c.get("/"));
            serve("2", List.of(listener), List.of(ProxyConfigUpdateTest.routes("b")),
                    List.of(ProxyConfigUpdateTest.cluster("a", a), ProxyConfigUpdateTest.cluster("b", b)));
            String answer = "";
            for (int i = 0; i < 250 && !answer.equals("from b"); i++) {
                Thread.sleep(20);
                answer = c.get("/");
            }
            assertEquals("from b", answer, "the same connection, once RDS and CDS moved it to b");
        }
    }

    @Test
    void aBootstrapsStaticListenerAndClusterServeBesideTheDynamicOnesAndTakeTheirRoutesFromRds() throws Exception {
        int port = LoopbackProxy.freePort();
        int dynamicPort = LoopbackProxy.freePort();
        int a = backend("static cluster");
        Path bootstrap = dir.resolve("bootstrap.yaml");
        Files.writeString(bootstrap, "static_resources:\n  listeners:\n"
                + ProxyConfigUpdateTest.rdsListener(port).indent(2) + "  clusters:\n"
                + ProxyConfigUpdateTest.cluster("a", a).indent(2));
        serve("1", List.of(ProxyConfigUpdateTest.direct("dynamic", dynamicPort, "dynamic")),
                List.of(ProxyConfigUpdateTest.routes("a")), List.of());
        proxy = StandaloneProxy.start(new StandaloneProxy.Settings(bootstrap, -1, -1, 1, null, AdminHook.NONE)
                .withXds(ads()));
        ProxyConfigUpdateTest.awaitAnswer(dynamicPort, "dynamic");
        ProxyConfigUpdateTest.awaitAnswer(port, "static cluster");
        assertTrue(proxy.snapshots().current().resources().isStatic(
                dev.inmesh.runtime.xds.ResourceType.LISTENER, "rds"));
        assertFalse(proxy.snapshots().current().resources().isStatic(
                dev.inmesh.runtime.xds.ResourceType.LISTENER, "dynamic"));
        assertTrue(controlPlane.requests.stream().anyMatch(r -> r.getTypeUrl().endsWith("RouteConfiguration")
                && r.getResourceNamesList().contains("routes")), "RDS subscribed for the static listener");
    }

    /**
     * Starts the proxy on the control plane, with {@code /config_dump} on {@link #adminPort}, serving version 1: a
     * listener "first" answering "one"; its port.
     */
    private int startWithConfigDump() throws Exception {
        int first = LoopbackProxy.freePort();
        serve("1", List.of(ProxyConfigUpdateTest.direct("first", first, "one")), List.of(), List.of());
        AdminHook hook = (vertx, snapshots, addresses, drain, xds, sds) -> {
            AdminServer admin = AdminServer.builder(vertx).snapshots(snapshots).dynamicState(xds::dynamicState)
                    .mount(AdminServer.Mount.of("127.0.0.1", 0, AdminServer.Endpoint.CONFIG_DUMP)).build();
            admin.start().await(10, TimeUnit.SECONDS);
            adminPort = admin.port(0);
            return () -> admin.close().await(10, TimeUnit.SECONDS);
        };
        proxy = StandaloneProxy.start(new StandaloneProxy.Settings(null, -1, -1, 1, null, hook).withXds(ads()));
        ProxyConfigUpdateTest.awaitAnswer(first, "one");
        return first;
    }

    /** The control plane's first LDS NACK whose message names {@code listener}. */
    private DiscoveryRequest awaitListenerNack(String listener) throws Exception {
        for (int i = 0; i < 500; i++) {
            for (DiscoveryRequest r : controlPlane.requests) {
                if (r.getTypeUrl().endsWith("Listener") && r.hasErrorDetail()
                        && r.getErrorDetail().getMessage().contains(" " + listener + ": ")) {
                    return r;
                }
            }
            Thread.sleep(20);
        }
        throw new AssertionError("no LDS NACK naming " + listener + ": " + controlPlane.requests);
    }

    /** The {@code error_state} of {@code listener} in {@code /config_dump}'s dynamic listeners. */
    private JsonNode errorState(String listener) throws Exception {
        HttpResponse<String> r = HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create(
                "http://127.0.0.1:" + adminPort + "/config_dump?resource=dynamic_listeners")).build(),
                HttpResponse.BodyHandlers.ofString());
        assertEquals(200, r.statusCode(), r.body());
        for (JsonNode e : EnvoyJson.tree(r.body()).path("configs")) {
            if (e.path("name").asText().equals(listener)) {
                return e.path("error_state");
            }
        }
        throw new AssertionError("no dynamic listener " + listener + ": " + r.body());
    }

    @Test
    void anLdsListenerOnAPortInUseIsNackedByNameWhileTheOthersOfTheUpdateAreBound() throws Exception {
        int first = startWithConfigDump();
        try (ServerSocket taken = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            int busy = taken.getLocalPort();
            int second = LoopbackProxy.freePort();
            serve("2", List.of(ProxyConfigUpdateTest.direct("first", first, "one"),
                    ProxyConfigUpdateTest.direct("busy", busy, "busy"),
                    ProxyConfigUpdateTest.direct("second", second, "second")), List.of(), List.of());

            DiscoveryRequest nack = awaitListenerNack("busy");
            assertEquals("1", nack.getVersionInfo(), "a NACK carries the last version accepted");
            assertTrue(nack.getErrorDetail().getMessage().contains("Error adding/updating listener(s) busy: address: "
                    + "cannot bind '127.0.0.1:" + busy + "'"), nack.getErrorDetail().getMessage());
            ProxyConfigUpdateTest.awaitAnswer(second, "second");
            ProxyConfigUpdateTest.awaitAnswer(first, "one");
            assertFalse(proxy.snapshots().current().listeners().containsKey("busy"));
            JsonNode error = errorState("busy");
            assertTrue(error.path("details").asText().contains("cannot bind '127.0.0.1:" + busy + "'"),
                    error.toString());
            assertEquals("2", error.path("version_info").asText());
        }
    }

    @Test
    void anLdsListenerMovedToAPortInUseIsNackedAndKeepsServingOnItsOldPort() throws Exception {
        int first = startWithConfigDump();
        int busy;
        try (ServerSocket taken = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            busy = taken.getLocalPort();
            serve("2", List.of(ProxyConfigUpdateTest.direct("first", busy, "two")), List.of(), List.of());

            DiscoveryRequest nack = awaitListenerNack("first");
            assertTrue(nack.getErrorDetail().getMessage().contains("cannot bind '127.0.0.1:" + busy + "'"),
                    nack.getErrorDetail().getMessage());
            ProxyConfigUpdateTest.awaitAnswer(first, "one");
            assertEquals(first, proxy.snapshots().current().listeners().get("first").address().port(),
                    "the last good version serves");
            assertTrue(errorState("first").path("details").asText().contains("cannot bind"));
        }
        // the port free again: the control plane's next version moves the listener
        serve("3", List.of(ProxyConfigUpdateTest.direct("first", busy, "three")), List.of(), List.of());
        ProxyConfigUpdateTest.awaitAnswer(busy, "three");
        ProxyConfigUpdateTest.awaitRefused(first);
    }

    @Test
    void inTheFirstConfigurationAListenerOnAPortInUseIsNackedAndAStaticOneLeftOutWhileTheOthersServe()
            throws Exception {
        int dynamicPort = LoopbackProxy.freePort();
        try (ServerSocket taken = new ServerSocket(0, 1, InetAddress.getLoopbackAddress());
             ServerSocket alsoTaken = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            Path bootstrap = dir.resolve("bootstrap.yaml");
            Files.writeString(bootstrap, "static_resources:\n  listeners:\n"
                    + ProxyConfigUpdateTest.direct("static", taken.getLocalPort(), "static").indent(2));
            serve("1", List.of(ProxyConfigUpdateTest.direct("dynamic", dynamicPort, "dynamic"),
                    ProxyConfigUpdateTest.direct("busy", alsoTaken.getLocalPort(), "busy")), List.of(), List.of());
            proxy = StandaloneProxy.start(new StandaloneProxy.Settings(bootstrap, -1, -1, 1, null, AdminHook.NONE)
                    .withXds(ads()));
            ProxyConfigUpdateTest.awaitAnswer(dynamicPort, "dynamic");
            assertTrue(proxy.snapshots().ready(), "the first configuration applies without the static listener");
            assertFalse(proxy.snapshots().current().listeners().containsKey("static"));
            assertTrue(awaitListenerNack("busy").getErrorDetail().getMessage().contains("cannot bind"));
        }
    }
}
