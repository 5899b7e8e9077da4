package dev.inmesh.interception.proxy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.runtime.xds.EnvoyConfigReader;
import io.vertx.core.Vertx;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.time.Instant;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The standalone proxy follows its configuration as Envoy follows LDS, RDS and CDS: a new connection gets the newest
 * listener configuration, the next request of an open connection the newest routes and clusters, a new listener is
 * bound, a removed one stops accepting, one that moved binds its new address; a configuration with a listener that
 * cannot be bound is rejected, naming it, and the last good one serves on.
 */
@Timeout(60)
class ProxyConfigUpdateTest {
    @TempDir
    Path dir;
    private LoopbackProxy proxy;
    private Vertx backends;

    @AfterEach
    void stop() throws Exception {
        if (proxy != null) {
            proxy.close();
        }
        if (backends != null) {
            backends.close().await(10, TimeUnit.SECONDS);
        }
    }

    /** A listener on 127.0.0.1:{@code port} answering every request with {@code body} (inline routes). */
    static String direct(String name, int port, String body) {
        return """
                  - name: %s
                    address: {socket_address: {address: 127.0.0.1, port_value: %d}}
                    filter_chains:
                    - filters:
                      - name: envoy.filters.network.http_connection_manager
                        typed_config:
                          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                          stat_prefix: %s
                          route_config:
                            name: %s
                            virtual_hosts:
                            - name: all
                              domains: ["*"]
                              routes:
                              - match: {prefix: /}
                                direct_response: {status: 200, body: {inline_string: "%s"}}
                          http_filters:
                          - name: envoy.filters.http.router
                            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
                """.formatted(name, port, name, name, body);
    }

    /** A listener on 127.0.0.1:{@code port} whose routes are the RDS configuration {@code routes}. */
    static String rdsListener(int port) {
        return """
                - name: rds
                  address: {socket_address: {address: 127.0.0.1, port_value: %d}}
                  filter_chains:
                  - filters:
                    - name: envoy.filters.network.http_connection_manager
                      typed_config:
                        "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                        stat_prefix: rds
                        rds: {route_config_name: routes}
                        http_filters:
                        - name: envoy.filters.http.router
                          typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
                """.formatted(port);
    }

    /** The RDS configuration {@code routes}: every request to {@code cluster}. */
    static String routes(String cluster) {
        return """
                - name: routes
                  virtual_hosts:
                  - name: all
                    domains: ["*"]
                    routes:
                    - {match: {prefix: /}, route: {cluster: %s}}
                """.formatted(cluster);
    }

    static String cluster(String name, int port) {
        return """
                - name: %s
                  type: STATIC
                  connect_timeout: 1s
                  load_assignment:
                    cluster_name: %s
                    endpoints:
                    - lb_endpoints:
                      - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: %d}}}
                """.formatted(name, name, port);
    }

    private void apply(String yaml) throws Exception {
        proxy.snapshots.apply(EnvoyConfigReader.read(yaml));
    }

    private int backend(String answer) throws Exception {
        if (backends == null) {
            backends = Vertx.vertx();
        }
        return backend(backends, answer);
    }

    /** A loopback HTTP server on {@code vertx} answering every request with {@code answer}; its port. */
    static int backend(Vertx vertx, String answer) throws Exception {
        return vertx.createHttpServer().requestHandler(req -> req.response().end(answer))
                .listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS).actualPort();
    }

    @Test
    void aNewConnectionGetsTheListenersNewRoutes() throws Exception {
        int port = LoopbackProxy.freePort();
        proxy = new LoopbackProxy("static_resources:\n  listeners:\n" + direct("plain", port, "one"));
        try (Client c = new Client(port)) {
            assertEquals("one", c.get("/"));
        }
        apply("static_resources:\n  listeners:\n" + direct("plain", port, "two"));
        try (Client c = new Client(port)) {
            assertEquals("two", c.get("/"));
        }
    }

    @Test
    void theNextRequestOfAnOpenConnectionTakesTheNewRdsRoutesAndAClusterAddedSince() throws Exception {
        int port = LoopbackProxy.freePort();
        int first = backend("first");
        int second = backend("second");
        String listener = rdsListener(port);
        proxy = new LoopbackProxy(listener + routes("a") + cluster("a", first));
        try (Client c = new Client(port)) {
            assertEquals("first", c.get("/"));
            apply(listener + routes("b") + cluster("a", first) + cluster("b", second));
            assertEquals("second", c.get("/"), "the same keep-alive connection, after the route update");
        }
    }

    @Test
    void listenersAreBoundStoppedAndMovedAsTheConfigurationChanges() throws Exception {
        int kept = LoopbackProxy.freePort();
        int gone = LoopbackProxy.freePort();
        proxy = new LoopbackProxy("static_resources:\n  listeners:\n" + direct("kept", kept, "kept")
                + direct("gone", gone, "gone"));
        int added = LoopbackProxy.freePort();
        int moved = LoopbackProxy.freePort();
        apply("static_resources:\n  listeners:\n" + direct("kept", kept, "kept") + direct("added", added, "added"));
        awaitAnswer(added, "added");
        awaitRefused(gone);
        try (Client c = new Client(kept)) {
            assertEquals("kept", c.get("/"));
        }
        apply("static_resources:\n  listeners:\n" + direct("kept", moved, "moved") + direct("added", added, "added"));
        awaitAnswer(moved, "moved");
        awaitRefused(kept);
    }

    @Test
    void aListenerInUseAtStartFailsTheStartNamingTheListenerAndItsAddressAsEnvoyDoes() throws Exception {
        try (java.net.ServerSocket taken = new java.net.ServerSocket(0, 1,
                java.net.InetAddress.getLoopbackAddress())) {
            int busy = taken.getLocalPort();
            IllegalStateException e = assertThrows(IllegalStateException.class,
                    () -> new LoopbackProxy("static_resources:\n  listeners:\n" + direct("busy", busy, "x")));
            assertEquals("listener busy: cannot bind '127.0.0.1:" + busy + "': Address already in use",
                    e.getMessage());
        }
    }

    @Test
    void aConfigurationWithAListenerThatCannotBeBoundIsRejectedNamingItAndTheLastGoodOneServes() throws Exception {
        int port = LoopbackProxy.freePort();
        proxy = new LoopbackProxy("static_resources:\n  listeners:\n" + direct("plain", port, "one"));
        try (java.net.ServerSocket taken = new java.net.ServerSocket(0, 1,
                java.net.InetAddress.getLoopbackAddress())) {
            int busy = taken.getLocalPort();
            int added = LoopbackProxy.freePort();
            dev.inmesh.runtime.snapshot.MeshSnapshot before = proxy.snapshots.current();
            dev.inmesh.runtime.xds.InvalidResourceException e = assertThrows(
                    dev.inmesh.runtime.xds.InvalidResourceException.class, () -> apply("static_resources:\n"
                            + "  listeners:\n" + direct("plain", port, "two") + direct("busy", busy, "x")
                            + direct("added", added, "added")));
            assertEquals("busy", e.resourceName());
            assertTrue(e.getMessage().startsWith("Listener \"busy\": address: cannot bind '127.0.0.1:" + busy
                    + "': "), e.getMessage());
            assertSame(before, proxy.snapshots.current(), "nothing of the rejected configuration applies");
            try (Client c = new Client(port)) {
                assertEquals("one", c.get("/"));
            }
            assertFalse(accepts(added));

            // a listener that takes the address one of the proxy's own listeners keeps: Envoy's duplicate address
            e = assertThrows(dev.inmesh.runtime.xds.InvalidResourceException.class, () -> apply(
                    "static_resources:\n  listeners:\n" + direct("plain", port, "one") + direct("twin", port, "x")));
            assertEquals("Listener \"twin\": address: duplicate address '127.0.0.1:" + port
                    + "' as existing listener 'plain'", e.getMessage());

            // an address the same update takes from one of the proxy's listeners (moved away) is free
            int moved = LoopbackProxy.freePort();
            apply("static_resources:\n  listeners:\n" + direct("plain", moved, "moved")
                    + direct("heir", port, "heir"));
            awaitAnswer(moved, "moved");
            awaitAnswer(port, "heir");

            taken.close();
            apply("static_resources:\n  listeners:\n" + direct("plain", moved, "moved") + direct("heir", port, "heir")
                    + direct("busy", busy, "x"));
            awaitAnswer(busy, "x");
        }
    }

    @Test
    void aListenerWhosePortWasTakenAfterItsCheckDoesNotMakeLaterConfigurationsFail() throws Exception {
        int port = LoopbackProxy.freePort();
        int late = LoopbackProxy.freePort();
        proxy = new LoopbackProxy("static_resources:\n  listeners:\n" + direct("plain", port, "one"));
        java.net.ServerSocket[] thief = new java.net.ServerSocket[1];
        // runs after the proxy's own check: another process takes the port between the probe and the bind
        proxy.snapshots.addCheck(bundle -> {
            if (bundle.listeners().containsKey("late") && thief[0] == null) {
                try {
                    thief[0] = new java.net.ServerSocket(late, 1, java.net.InetAddress.getLoopbackAddress());
                } catch (java.io.IOException e) {
                    throw new java.io.UncheckedIOException(e);
                }
            }
        });
        try {
            apply("static_resources:\n  listeners:\n" + direct("plain", port, "one") + direct("late", late, "late"));
            assertTrue(thief[0] != null && thief[0].isBound());

            // the next configuration changes another listener and keeps the one left out: it applies
            apply("static_resources:\n  listeners:\n" + direct("plain", port, "two") + direct("late", late, "late"));
            awaitAnswer(port, "two");

            // once the port is free again, the next configuration binds it
            thief[0].close();
            apply("static_resources:\n  listeners:\n" + direct("plain", port, "three")
                    + direct("late", late, "late"));
            awaitAnswer(port, "three");
            awaitAnswer(late, "late");
        } finally {
            if (thief[0] != null) {
                thief[0].close();
            }
        }
    }

    @Test
    void aTransparentListenerIsProbedAsItWouldBeBoundAndRejectedWhenItCannotBe() throws Exception {
        org.junit.jupiter.api.Assumptions.assumeTrue(io.netty.channel.epoll.Epoll.isAvailable(), "TPROXY needs epoll");
        int port = LoopbackProxy.freePort();
        proxy = new LoopbackProxy("static_resources:\n  listeners:\n" + direct("plain", port, "one"));
        try (java.net.ServerSocket taken = new java.net.ServerSocket(0, 1,
                java.net.InetAddress.getLoopbackAddress())) {
            int busy = taken.getLocalPort();
            String tproxy = direct("tproxy", busy, "x").replace("    address:", "    transparent: true\n    address:");
            dev.inmesh.runtime.xds.InvalidResourceException e = assertThrows(
                    dev.inmesh.runtime.xds.InvalidResourceException.class, () -> apply("static_resources:\n"
                            + "  listeners:\n" + direct("plain", port, "one") + tproxy));
            // in use, or, without CAP_NET_ADMIN, IP_TRANSPARENT refused: either way named, and not bound
            assertTrue(e.getMessage().startsWith("Listener \"tproxy\": address: cannot bind '127.0.0.1:" + busy
                    + "' (transparent): "), e.getMessage());
            assertTrue(e.getMessage().endsWith("Address already in use")
                    || e.getMessage().endsWith("Operation not permitted"), e.getMessage());
        }
    }

    @Test
    void aReloadedFileWithAListenerThatCannotBeBoundKeepsTheLastGoodConfigurationServing() throws Exception {
        int port = LoopbackProxy.freePort();
        Path config = dir.resolve("proxy.yaml");
        Files.writeString(config, "static_resources:\n  listeners:\n" + direct("plain", port, "one"));
        List<String> kept = new CopyOnWriteArrayList<>();
        java.util.logging.Logger log = java.util.logging.Logger.getLogger(
                dev.inmesh.runtime.config.FileConfigSource.class.getName());
        java.util.logging.Handler handler = new java.util.logging.Handler() {
            @Override
            public void publish(java.util.logging.LogRecord r) {
                kept.add(new java.util.logging.SimpleFormatter().formatMessage(r));
            }

            @Override
            public void flush() {}

            @Override
            public void close() {}
        };
        log.addHandler(handler);
        try (StandaloneProxy standalone = StandaloneProxy.start(new StandaloneProxy.Settings(config, -1, -1, 1, null,
                AdminHook.NONE));
             java.net.ServerSocket taken = new java.net.ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            int busy = taken.getLocalPort();
            int added = LoopbackProxy.freePort();
            dev.inmesh.runtime.snapshot.MeshSnapshot before = standalone.snapshots().current();
            // the listener moves to a port in use, and another one is added: the file source rejects the whole file
            Files.writeString(config, "static_resources:\n  listeners:\n" + direct("plain", busy, "two")
                    + direct("added", added, "added"));
            Files.setLastModifiedTime(config, FileTime.from(Instant.now().plusSeconds(5)));
            for (int i = 0; i < 500 && kept.stream().noneMatch(m -> m.contains("kept the last good")); i++) {
                Thread.sleep(20);
            }
            assertTrue(kept.stream().anyMatch(m -> m.contains("kept the last good configuration: " + config
                    + ": Listener \"plain\": address: cannot bind '127.0.0.1:" + busy + "'")), kept.toString());
            assertSame(before, standalone.snapshots().current(), "the last good configuration is kept");
            awaitAnswer(port, "one");
            assertFalse(accepts(added), "nothing of the rejected file applies");

            // once the file is fixed, it applies
            Files.writeString(config, "static_resources:\n  listeners:\n" + direct("plain", port, "three")
                    + direct("added", added, "added"));
            Files.setLastModifiedTime(config, FileTime.from(Instant.now().plusSeconds(10)));
            awaitAnswer(port, "three");
            awaitAnswer(added, "added");
        } finally {
            log.removeHandler(handler);
        }
    }

    @Test
    void listenersStoppedByADrainStayStoppedAndNewOnesOfThatScopeAreNotStarted() throws Exception {
        int inbound = LoopbackProxy.freePort();
        int outbound = LoopbackProxy.freePort();
        String in = direct("in", inbound, "in").replace("    address:", "    traffic_direction: INBOUND\n    address:");
        proxy = new LoopbackProxy("static_resources:\n  listeners:\n" + in + direct("out", outbound, "out"));
        proxy.server.drainListeners(true, false, false);
        awaitRefused(inbound);
        int newInbound = LoopbackProxy.freePort();
        int newOutbound = LoopbackProxy.freePort();
        apply("static_resources:\n  listeners:\n" + in + direct("out", outbound, "out")
                + direct("in2", newInbound, "in2").replace("    address:", "    traffic_direction: INBOUND\n    address:")
                + direct("out2", newOutbound, "out2"));
        awaitAnswer(newOutbound, "out2");
        assertFalse(accepts(inbound), "a stopped inbound listener is not bound again");
        assertFalse(accepts(newInbound), "a new inbound listener is not started after the inbound ones stopped");
        awaitAnswer(outbound, "out");
    }

    @Test
    void theStandaloneProxyAppliesAChangedFileToNewConnections() throws Exception {
        proxy = null;
        int port = LoopbackProxy.freePort();
        Path config = dir.resolve("proxy.yaml");
        Files.writeString(config, "static_resources:\n  listeners:\n" + direct("plain", port, "one"));
        try (StandaloneProxy standalone = StandaloneProxy.start(new StandaloneProxy.Settings(config, -1, -1, 1, null,
                AdminHook.NONE))) {
            try (Client c = new Client(port)) {
                assertEquals("one", c.get("/"));
            }
            int added = LoopbackProxy.freePort();
            Files.writeString(config, "static_resources:\n  listeners:\n" + direct("plain", port, "two")
                    + direct("added", added, "added"));
            Files.setLastModifiedTime(config, FileTime.from(Instant.now().plusSeconds(5)));
            awaitAnswer(port, "two");
            awaitAnswer(added, "added");
            assertTrue(standalone.snapshots().current().listeners().containsKey("added"));
        }
    }

    /**
     * A file replaced while the proxy starts, after it read the file (here: as its admin starts), is a reload as any
     * later change is: a bad one is counted as the LDS subscription's failure and the configuration read at start
     * serves on, as Envoy, which reads its bootstrap once, never stops for a bad file later.
     */
    @Test
    void aFileReplacedWhileTheProxyStartsIsAReloadAndABadOneKeepsTheFirstConfigurationServing() throws Exception {
        proxy = null;
        int port = LoopbackProxy.freePort();
        Path config = dir.resolve("lds.yaml");
        Files.writeString(config, "resources:\n" + direct("plain", port, "one"));
        var registry = new io.micrometer.core.instrument.simple.SimpleMeterRegistry();
        AdminHook replacing = (vertx, snapshots, addresses, drain, xds, sds) -> {
            snapshots.stats().bind(registry);
            try {
                Path tmp = dir.resolve("lds.yaml.tmp");
                Files.writeString(tmp, "{not: yaml");
                Files.move(tmp, config, java.nio.file.StandardCopyOption.ATOMIC_MOVE,
                        java.nio.file.StandardCopyOption.REPLACE_EXISTING);
            } catch (java.io.IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
            return () -> { };
        };
        try (StandaloneProxy standalone = StandaloneProxy.start(new StandaloneProxy.Settings(config, -1, -1, 1, null,
                replacing))) {
            for (int i = 0; i < 500 && registry.get("envoy_listener_manager_lds_update_failure").gauge().value() < 1;
                    i++) {
                Thread.sleep(20);
            }
            assertEquals(1, (long) registry.get("envoy_listener_manager_lds_update_failure").gauge().value());
            assertEquals(1, (long) registry.get("envoy_listener_manager_lds_update_success").gauge().value());
            try (Client c = new Client(port)) {
                assertEquals("one", c.get("/"));
            }
            assertTrue(standalone.snapshots().current().listeners().containsKey("plain"));
        }
    }

    /** Waits until a new connection to {@code port} is answered {@code body}. */
    static void awaitAnswer(int port, String body) throws Exception {
        String last = null;
        for (int i = 0; i < 500; i++) {
            try (Client c = new Client(port)) {
                last = c.get("/");
                if (body.equals(last)) {
                    return;
                }
            } catch (java.io.IOException e) {
                last = e.toString();
            }
            Thread.sleep(20);
        }
        throw new AssertionError("port " + port + " answers " + last + ", not " + body);
    }

    static void awaitRefused(int port) throws Exception {
        for (int i = 0; i < 250 && accepts(port); i++) {
            Thread.sleep(20);
        }
        assertFalse(accepts(port), "port " + port + " still accepts");
    }

    private static boolean accepts(int port) {
        try (Socket s = new Socket("127.0.0.1", port)) {
            return true;
        } catch (java.io.IOException e) {
            return false;
        }
    }

    /** A keep-alive HTTP/1.1 client over one connection. */
    static final class Client implements AutoCloseable {
        private final Socket socket;
        private final BufferedReader in;
        private final OutputStream out;

        Client(int port) throws java.io.IOException {
            socket = new Socket("127.0.0.1", port);
            socket.setSoTimeout(10_000);
            in = new BufferedReader(new InputStreamReader(socket.getInputStream(), StandardCharsets.ISO_8859_1));
            out = socket.getOutputStream();
        }

        /** Sends a GET and returns the answer's body (by content-length). */
        String get(String path) throws java.io.IOException {
            out.write(("GET " + path + " HTTP/1.1\r\nhost: svc\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
            out.flush();
            int length = 0;
            String line;
            while ((line = in.readLine()) != null && !line.isEmpty()) {
                if (line.toLowerCase(java.util.Locale.ROOT).startsWith("content-length:")) {
                    length = Integer.parseInt(line.substring(15).trim());
                }
            }
            if (line == null) {
                throw new java.io.EOFException("closed before an answer");
            }
            char[] body = new char[length];
            for (int n = 0; n < length; ) {
                int r = in.read(body, n, length - n);
                if (r < 0) {
                    throw new java.io.EOFException("closed in the body");
                }
                n += r;
            }
            return new String(body);
        }

        @Override
        public void close() throws java.io.IOException {
            socket.close();
        }
    }
}
