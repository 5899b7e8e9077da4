package dev.inmesh.interception.proxy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpServer;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.ConnectException;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Envoy's {@code POST /drain_listeners}: without {@code graceful} the listeners stop accepting at once and their
 * connections run on; with it they keep accepting for the drain time while HTTP/1 answers carry
 * {@code connection: close} and end their connections; {@code inboundonly} leaves outbound listeners alone. And the
 * drain of Envoy's LDS updates: the connections of a listener that is removed, or of a filter chain that changed,
 * drain for the drain time and are then closed; those of a chain that stayed equal are kept alive. And the stop at
 * SIGTERM, as Istio's agent stops its sidecar.
 */
@Timeout(30)
class ListenerDrainTest {
    private Vertx backends;
    private LoopbackProxy proxy;
    private int inboundPort;
    private int outboundPort;
    private String yaml;
    @org.junit.jupiter.api.io.TempDir
    java.nio.file.Path dir;
    /** Requests to {@code /held} wait here until the test answers them. */
    private final List<Promise<Void>> held = new java.util.concurrent.CopyOnWriteArrayList<>();
    /** Counted down when the upstream connection of a {@code /held} request closes. */
    private final java.util.concurrent.CountDownLatch heldConnectionClosed = new java.util.concurrent.CountDownLatch(1);

    @BeforeEach
    void start() throws Exception {
        backends = Vertx.vertx();
        HttpServer app = backends.createHttpServer().requestHandler(req -> {
            if (req.path().equals("/held")) {
                req.connection().closeHandler(v -> heldConnectionClosed.countDown());
                Promise<Void> p = Promise.promise();
                held.add(p);
                p.future().onComplete(v -> req.response().end("held done"));
            } else {
                req.response().end("ok");
            }
        });
        int appPort = app.listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS).actualPort();
        inboundPort = LoopbackProxy.freePort();
        outboundPort = LoopbackProxy.freePort();
        yaml = "static_resources:\n  listeners:\n" + listener("inbound", inboundPort, "INBOUND")
                + listener("outbound", outboundPort, "OUTBOUND") + Http1RequestsTest.clusterC(appPort);
        proxy = new LoopbackProxy(yaml);
    }

    private static String listener(String name, int port, String direction) {
        return listener(name, port, direction, "");
    }

    /** A listener whose connection manager has {@code hcmField} (a line of YAML) too. */
    private static String listener(String name, int port, String direction, String hcmField) {
        return Http1RequestsTest.listener(name, port, hcmField).replace("    filter_chains:\n",
                "    traffic_direction: " + direction + "\n    filter_chains:\n");
    }

    @AfterEach
    void stop() throws Exception {
        held.forEach(p -> p.tryComplete());
        if (proxy != null) {
            proxy.close();
        }
        backends.close().await(10, TimeUnit.SECONDS);
    }

    /** An HTTP/1.1 keep-alive connection read line by line. */
    private static final class Client implements AutoCloseable {
        final Socket socket;
        final BufferedReader in;
        final OutputStream out;

        Client(int port) throws Exception {
            this("127.0.0.1", port);
        }

        Client(String address, int port) throws Exception {
            socket = new Socket(address, port);
            socket.setSoTimeout(10_000);
            in = new BufferedReader(new InputStreamReader(socket.getInputStream(), StandardCharsets.ISO_8859_1));
            out = socket.getOutputStream();
        }

        void send(String path) throws Exception {
            out.write(("GET " + path + " HTTP/1.1\r\nhost: svc\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
            out.flush();
        }

        /** Reads one response: its head's lines (lower case) and its body (by content-length). */
        List<String> response() throws Exception {
            List<String> head = new ArrayList<>();
            int length = 0;
            for (String line; (line = in.readLine()) != null && !line.isEmpty(); ) {
                head.add(line.toLowerCase());
                if (line.toLowerCase().startsWith("content-length:")) {
                    length = Integer.parseInt(line.substring(15).trim());
                }
            }
            char[] body = new char[length];
            for (int n = 0; n < length; ) {
                n += in.read(body, n, length - n);
            }
            head.add(new String(body));
            return head;
        }

        /** Whether the proxy closed the connection (end of stream). */
        boolean closedByPeer() throws Exception {
            return in.read() == -1;
        }

        @Override
        public void close() throws Exception {
            socket.close();
        }
    }

    private void awaitHeld(int n) throws InterruptedException {
        for (int i = 0; i < 250 && held.size() < n; i++) {
            Thread.sleep(20);
        }
        assertEquals(n, held.size());
    }

    private static boolean accepts(int port) throws Exception {
        try (Socket s = new Socket("127.0.0.1", port)) {
            return true;
        } catch (ConnectException e) {
            return false;
        } catch (java.net.SocketException e) {
            // a listener closing with this connection in its backlog resets it: it no longer accepts either
            if (!String.valueOf(e.getMessage()).contains("reset")) {
                throw e;
            }
            return false;
        }
    }

    private static void awaitRefused(int port) throws Exception {
        for (long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(15); accepts(port) && System.nanoTime() < end; ) {
            Thread.sleep(20);
        }
        assertFalse(accepts(port), "port " + port + " still accepts");
    }

    @Test
    void aGracefulDrainClosesKeepAliveConnectionsAfterTheirAnswerWhileARequestInFlightFinishes() throws Exception {
        proxy.server.drainTime(Duration.ofSeconds(3)); // long enough for what follows on a loaded machine
        try (Client idle = new Client(inboundPort); Client busy = new Client(inboundPort)) {
            idle.send("/");
            assertFalse(idle.response().contains("connection: close"), "keep-alive before the drain");
            busy.send("/held");
            awaitHeld(1);

            proxy.server.drainListeners(false, true, false);

            idle.send("/");
            List<String> answer = idle.response();
            assertTrue(answer.get(0).startsWith("http/1.1 200"), answer.toString());
            assertTrue(answer.contains("connection: close"), answer.toString());
            assertTrue(idle.closedByPeer(), "the connection ends after its answer");
            held.get(0).complete();
            List<String> late = busy.response();
            assertTrue(late.contains("connection: close"), late.toString());
            assertEquals("held done", late.get(late.size() - 1), "the request in flight finished");
            assertTrue(busy.closedByPeer());
            // still accepting during the drain time, then stopped
            try (Client during = new Client(outboundPort)) {
                during.send("/");
                assertTrue(during.response().contains("connection: close"));
            }
            awaitRefused(inboundPort);
            awaitRefused(outboundPort);
        }
    }

    @Test
    void theAdminActionsTellTheDrainTimeWhichServerInfoReportsAsEnvoysDrainTimeOption() {
        // by default Istio's drainDuration, its sidecars' --drain-time-s: not its 5 s terminationDrainDuration
        assertEquals(Duration.ofSeconds(45), proxy.server.adminActions().drainTime());
        proxy.server.drainTime(Duration.ofSeconds(20));
        assertEquals(Duration.ofSeconds(20), proxy.server.adminActions().drainTime());
    }

    @Test
    void whileTheHealthChecksFailAnswersCloseTheirConnectionsAndTheListenersKeepAcceptingAsEnvoy() throws Exception {
        try (Client open = new Client(outboundPort)) {
            open.send("/");
            assertFalse(open.response().contains("connection: close"), "keep-alive before");

            proxy.server.adminActions().healthCheckFailed(true);

            open.send("/");
            List<String> answer = open.response();
            assertTrue(answer.get(0).startsWith("http/1.1 200"), answer.toString());
            assertTrue(answer.contains("connection: close"), answer.toString());
            assertTrue(open.closedByPeer(), "the connection ends after its answer");
        }
        try (Client inbound = new Client(inboundPort)) {
            inbound.send("/");
            assertTrue(inbound.response().contains("connection: close"), "every listener, still accepting");
        }

        proxy.server.adminActions().healthCheckFailed(false);

        try (Client after = new Client(outboundPort)) {
            after.send("/");
            assertFalse(after.response().contains("connection: close"), "kept alive once the checks pass");
            after.send("/");
            assertTrue(after.response().get(0).startsWith("http/1.1 200"));
        }
    }

    @Test
    void aModifyOnlyListenerIsNotDrainedWhileTheHealthChecksFailAsEnvoy() throws Exception {
        // Envoy's drain_type MODIFY_ONLY: drained by a change or removal of the listener, not by /healthcheck/fail
        proxy.close();
        proxy = new LoopbackProxy(yaml.replace(listener("outbound", outboundPort, "OUTBOUND"),
                listener("outbound", outboundPort, "OUTBOUND").replace("    filter_chains:\n",
                        "    drain_type: MODIFY_ONLY\n    filter_chains:\n")));
        proxy.server.adminActions().healthCheckFailed(true);
        try (Client modifyOnly = new Client(outboundPort)) {
            for (int i = 0; i < 2; i++) {
                modifyOnly.send("/");
                List<String> answer = modifyOnly.response();
                assertTrue(answer.get(0).startsWith("http/1.1 200"), answer.toString());
                assertFalse(answer.contains("connection: close"), "kept alive: " + answer);
            }
        }
        try (Client drained = new Client(inboundPort)) {
            drained.send("/");
            assertTrue(drained.response().contains("connection: close"), "a DEFAULT listener is drained");
        }
    }

    @Test
    void aDrainThatIsNotGracefulRefusesNewConnectionsAtOnceButAnOpenOneFinishesItsRequest() throws Exception {
        try (Client open = new Client(inboundPort)) {
            open.send("/held");
            awaitHeld(1);

            proxy.server.drainListeners(false, false, false);

            awaitRefused(inboundPort);
            awaitRefused(outboundPort);
            held.get(0).complete();
            List<String> answer = open.response();
            assertEquals("held done", answer.get(answer.size() - 1));
            assertFalse(answer.contains("connection: close"), "requests are not discouraged: " + answer);
            open.send("/");
            assertTrue(open.response().get(0).startsWith("http/1.1 200"), "the connection runs on");
        }
    }

    @Test
    void eachListenerADrainStopsIsCountedInListenerManagerListenerStoppedAsEnvoy() throws Exception {
        var registry = new io.micrometer.core.instrument.simple.SimpleMeterRegistry();
        Runnable unbind = proxy.snapshots.stats().bind(registry);
        try {
            java.util.function.DoubleSupplier stopped = () -> registry.get("envoy_listener_manager_listener_stopped")
                    .gauge().value();
            assertEquals(0, stopped.getAsDouble());

            proxy.server.drainListeners(true, false, false);
            awaitRefused(inboundPort);
            assertEquals(1, stopped.getAsDouble(), "the inbound listener, counted as it stopped");

            proxy.server.drainTime(Duration.ofMillis(100));
            proxy.server.drainListeners(false, true, false);
            awaitRefused(outboundPort);
            // counted on the drain timer's thread, as the listener's channel closes
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
            while (stopped.getAsDouble() < 2 && System.nanoTime() < deadline) {
                Thread.sleep(10);
            }
            assertEquals(2, stopped.getAsDouble(), "then the outbound one, once the graceful drain is over");
        } finally {
            unbind.run();
        }
    }

    @Test
    void inboundOnlyLeavesOutboundListenersAcceptingAndTheirConnectionsKeptAlive() throws Exception {
        // long enough that the inbound listener still takes the client below (it stops at the drain's end)
        proxy.server.drainTime(Duration.ofSeconds(3));

        proxy.server.drainListeners(true, true, false);

        try (Client in = new Client(inboundPort)) {
            in.send("/");
            assertTrue(in.response().contains("connection: close"));
        }
        awaitRefused(inboundPort);
        Thread.sleep(300);
        try (Client out = new Client(outboundPort)) {
            out.send("/");
            assertFalse(out.response().contains("connection: close"));
            out.send("/");
            assertTrue(out.response().get(0).startsWith("http/1.1 200"));
        }
    }

    /**
     * The proxy of the test's configuration, standalone, with the listener drain time {@code drainTime}; the loopback
     * one closed.
     */
    private StandaloneProxy standalone(Duration drainTime) throws Exception {
        return standalone(drainTime, AdminHook.NONE);
    }

    /** The same, its admin started by {@code admin}. */
    private StandaloneProxy standalone(Duration drainTime, AdminHook admin) throws Exception {
        if (proxy != null) {
            proxy.close();
            proxy = null;
        }
        java.nio.file.Path config = dir.resolve("proxy.yaml");
        java.nio.file.Files.writeString(config, yaml);
        return StandaloneProxy.start(new StandaloneProxy.Settings(config, -1, -1, 1, null, admin)
                .withDrainTime(drainTime));
    }

    @Test
    void afterTheAgentsDrainTheInboundListenersDrainWithoutStoppingAndALaterStopSkipsItsTerminationDrain()
            throws Exception {
        // Istio's agent's POST /drain (Kubernetes native sidecars): drain_listeners?inboundonly&graceful&skip_exit,
        // then its SIGTERM exits at once
        java.util.concurrent.atomic.AtomicReference<dev.inmesh.runtime.admin.AdminServer.DrainListeners> actions =
                new java.util.concurrent.atomic.AtomicReference<>();
        StandaloneProxy standalone = standalone(Duration.ofMillis(500), (vertx, snapshots, addresses, drain, xds,
                sds) -> {
            actions.set(drain);
            return () -> { };
        });
        actions.get().agentDrain();
        try (Client in = new Client(inboundPort); Client out = new Client(outboundPort)) {
            in.send("/");
            assertTrue(in.response().contains("connection: close"), "inbound requests are discouraged");
            out.send("/");
            assertFalse(out.response().contains("connection: close"), "the application's outbound runs on");
        }
        Thread.sleep(1000);
        assertTrue(accepts(inboundPort), "skip_exit: past the drain time the inbound listener still accepts");
        long started = System.nanoTime();
        stopping(standalone, Duration.ofSeconds(30), false, Duration.ZERO).get(10, TimeUnit.SECONDS);
        assertTrue(System.nanoTime() - started < TimeUnit.SECONDS.toNanos(5), "no termination drain");
    }

    /** {@link StandaloneProxy#drainAndClose(Duration, boolean, Duration)} on a thread of its own. */
    private static java.util.concurrent.CompletableFuture<Void> stopping(StandaloneProxy standalone, Duration drain,
                                                                       boolean exitOnZero, Duration minimum) {
        return stopping(standalone, drain, exitOnZero, minimum, a -> false);
    }

    /** The same, the connections of the listeners {@code uncounted} takes left out of its count. */
    private static java.util.concurrent.CompletableFuture<Void> stopping(StandaloneProxy standalone, Duration drain,
            boolean exitOnZero, Duration minimum, java.util.function.Predicate<java.net.InetSocketAddress> uncounted) {
        return java.util.concurrent.CompletableFuture.runAsync(() -> {
            try {
                standalone.drainAndClose(drain, exitOnZero, minimum, uncounted);
            } catch (Exception e) {
                throw new IllegalStateException(e);
            }
        });
    }

    @Test
    void stoppingDrainsTheInboundListenersForTheWholeTerminationDrainWhileOutboundRunsOnAsIstiosAgent()
            throws Exception {
        // the listener drain (Envoy's --drain-time-s, Istio's drainDuration) is longer than the termination drain
        // (terminationDrainDuration): as Istio's agent, which stops its Envoy when its own wait is over, the proxy
        // stops after the termination drain
        StandaloneProxy standalone = standalone(Duration.ofSeconds(60));
        long started = System.nanoTime();
        var stopped = stopping(standalone, Duration.ofSeconds(4), false, Duration.ZERO); // time for the requests
        Thread.sleep(300);
        // no connection is open, yet the proxy serves on for the drain time: callers may not have seen the pod go
        assertFalse(stopped.isDone());
        try (Client in = new Client(inboundPort); Client out = new Client(outboundPort)) {
            in.send("/");
            assertTrue(in.response().contains("connection: close"), "inbound requests are discouraged");
            out.send("/");
            assertFalse(out.response().contains("connection: close"), "the application's outbound runs on");
            out.send("/");
            assertTrue(out.response().get(0).startsWith("http/1.1 200"));
            stopped.get(10, TimeUnit.SECONDS);
        }
        long took = System.nanoTime() - started;
        assertTrue(took >= TimeUnit.SECONDS.toNanos(4), "the whole termination drain");
        assertTrue(took < TimeUnit.SECONDS.toNanos(30), "not the listener drain time");
        assertFalse(accepts(inboundPort));
        assertFalse(accepts(outboundPort));
    }

    @Test
    void whenTheTerminationDrainIsOverTheProxyStopsAtOnceCuttingWhatIsStillOpenAsIstiosAgentStopsItsEnvoy()
            throws Exception {
        StandaloneProxy standalone = standalone(Duration.ofSeconds(60));
        try (Client busy = new Client(inboundPort); Client idle = new Client(outboundPort)) {
            idle.send("/");
            idle.response();
            busy.send("/held"); // never answered
            awaitHeld(1);
            long started = System.nanoTime();
            stopping(standalone, Duration.ofSeconds(1), false, Duration.ZERO).get(10, TimeUnit.SECONDS);
            long took = System.nanoTime() - started;
            assertTrue(took < TimeUnit.MILLISECONDS.toNanos(8_000), "stopped " + took / 1_000_000
                    + " ms after the 1 s termination drain began, not once the request in flight ended");
            assertTrue(closedOrReset(busy), "the request in flight is cut");
            assertTrue(closedOrReset(idle), "an idle connection is closed");
        }
        assertFalse(accepts(inboundPort));
    }

    /** Whether the proxy ended the client's connection, closing or resetting it. */
    private static boolean closedOrReset(Client c) throws Exception {
        try {
            return c.closedByPeer();
        } catch (java.net.SocketException e) {
            return true;
        }
    }

    @Test
    void withExitOnZeroActiveConnectionsItStopsAfterTheMinimumOnceNoConnectionIsLeft() throws Exception {
        StandaloneProxy standalone = standalone(Duration.ofSeconds(20));
        long started = System.nanoTime();
        java.util.concurrent.CompletableFuture<Void> stopped;
        try (Client busy = new Client(inboundPort)) {
            busy.send("/held");
            awaitHeld(1);
            stopped = stopping(standalone, Duration.ofSeconds(20), true, Duration.ofMillis(200));
            Thread.sleep(1500);
            assertFalse(stopped.isDone(), "a request is in flight");
            held.get(0).complete();
            List<String> answer = busy.response();
            assertTrue(answer.contains("connection: close"), answer.toString());
            assertEquals("held done", answer.get(answer.size() - 1));
        }
        stopped.get(10, TimeUnit.SECONDS);
        assertTrue(System.nanoTime() - started < TimeUnit.SECONDS.toNanos(15),
                "stopped once no connection was left, not after the 20 s termination drain");
        assertFalse(accepts(inboundPort));
        assertFalse(accepts(outboundPort));
    }

    @Test
    void withExitOnZeroActiveConnectionsTheConnectionsOfIstiosOwnListenersAreNotCounted() throws Exception {
        // Istio's agent leaves its bootstrap's 0.0.0.0:15021 and 0.0.0.0:15090 listeners (and Envoy's admin) out of
        // its count: a Prometheus scraper's keep-alive connection does not hold the pod; here the outbound listener
        // stands for them (the tests bind loopback only)
        StandaloneProxy standalone = standalone(Duration.ofSeconds(20));
        try (Client scraper = new Client(outboundPort)) {
            scraper.send("/");
            scraper.response();
            long started = System.nanoTime();
            stopping(standalone, Duration.ofSeconds(20), true, Duration.ofMillis(200),
                    a -> a.getPort() == outboundPort).get(10, TimeUnit.SECONDS);
            assertTrue(System.nanoTime() - started < TimeUnit.SECONDS.toNanos(5), "the open connection not counted");
        }
        assertFalse(accepts(inboundPort));
    }

    @Test
    void istiosOwnListenersAreTheIpv4AnyAddressListenersOnItsStatusAndPrometheusPorts() {
        var istio = StandaloneProxy.istioListeners(java.util.Set.of(15021, 15090));
        assertTrue(istio.test(new java.net.InetSocketAddress("0.0.0.0", 15021)));
        assertTrue(istio.test(new java.net.InetSocketAddress("0.0.0.0", 15090)));
        // as the agent's stat names, listener.0.0.0.0_15021.downstream_cx_active: no other address
        assertFalse(istio.test(new java.net.InetSocketAddress("127.0.0.1", 15021)));
        assertFalse(istio.test(new java.net.InetSocketAddress("::", 15090)));
        assertFalse(istio.test(new java.net.InetSocketAddress("0.0.0.0", 15006)));
    }

    @Test
    void aQuitStopsAtOnceWithNoDrainBeforeOrDuringTheDrainAsIstiosAgentAfterQuitquitquit() throws Exception {
        // during a drain (SIGTERM first): it ends it
        StandaloneProxy standalone = standalone(Duration.ofSeconds(20));
        long started = System.nanoTime();
        var stopped = stopping(standalone, Duration.ofSeconds(20), true, Duration.ofSeconds(20));
        Thread.sleep(300);
        assertFalse(stopped.isDone());
        standalone.skipDrain();
        stopped.get(10, TimeUnit.SECONDS);
        assertTrue(System.nanoTime() - started < TimeUnit.SECONDS.toNanos(10), "not the 20 s minimum");
        assertFalse(accepts(inboundPort));
        assertFalse(accepts(outboundPort));

        // before it: no drain at all, even with a connection open
        StandaloneProxy quitting = standalone(Duration.ofSeconds(20));
        try (Client open = new Client(outboundPort)) {
            open.send("/");
            open.response();
            quitting.skipDrain();
            started = System.nanoTime();
            stopping(quitting, Duration.ofSeconds(20), false, Duration.ZERO).get(10, TimeUnit.SECONDS);
            assertTrue(System.nanoTime() - started < TimeUnit.SECONDS.toNanos(10), "not the 20 s drain time");
        }
        assertFalse(accepts(inboundPort));
    }

    @Test
    void skipExitKeepsTheListenersAcceptingAfterTheDrainTime() throws Exception {
        proxy.server.drainTime(Duration.ofMillis(100));

        proxy.server.drainListeners(false, true, true);

        Thread.sleep(400);
        assertTrue(accepts(inboundPort));
        try (Client c = new Client(inboundPort)) {
            c.send("/");
            assertTrue(c.response().contains("connection: close"), "requests are still discouraged");
        }
        proxy.server.drainListeners(false, false, false);
        awaitRefused(inboundPort);
        awaitRefused(outboundPort); // each listener's channel closes on its own: the inbound one first is no promise
    }

    private void apply(String config) throws Exception {
        proxy.snapshots.apply(dev.inmesh.runtime.xds.EnvoyConfigReader.read(config));
    }

    @Test
    void theConnectionsOfARemovedListenerGetConnectionCloseOnTheirNextAnswerAndAreClosedAfterTheDrainTime()
            throws Exception {
        // (4 s: the requests before the idle connection's wait take well under 3.5 s on a loaded machine)
        proxy.server.drainTime(Duration.ofSeconds(4));
        try (Client next = new Client(outboundPort); Client idle = new Client(outboundPort);
             Client kept = new Client(inboundPort)) {
            for (Client c : List.of(next, idle, kept)) {
                c.send("/");
                assertFalse(c.response().contains("connection: close"), "keep-alive before the update");
            }

            apply(yaml.replace(listener("outbound", outboundPort, "OUTBOUND"), ""));

            awaitRefused(outboundPort);
            next.send("/");
            List<String> answer = next.response();
            assertTrue(answer.get(0).startsWith("http/1.1 200"), answer.toString());
            assertTrue(answer.contains("connection: close"), answer.toString());
            assertTrue(next.closedByPeer(), "the connection ends after its answer");
            long start = System.nanoTime();
            assertTrue(idle.closedByPeer(), "an idle connection is closed when the drain time is over");
            assertTrue(System.nanoTime() - start > 500_000_000L, "closed before the drain time was over");
            kept.send("/");
            assertFalse(kept.response().contains("connection: close"), "the listener that stayed is not drained");
        }
    }

    /** The test's listeners as dynamic ones (an LDS response's resources), beside its static cluster. */
    private String dynamic(String listeners) {
        String clusters = yaml.substring(yaml.indexOf("  clusters:\n"));
        return "static_resources:\n" + clusters + "---\nversion_info: v" + System.nanoTime() + "\nresources:\n"
                + listeners.replaceAll("(?m)^  - name: ",
                        "  - \"@type\": type.googleapis.com/envoy.config.listener.v3.Listener\n    name: ");
    }

    /** The config dump's dynamic listeners by name: the states each has ({@code active_state}, ...). */
    private static java.util.Map<String, List<String>> dynamicListenerStates(dev.inmesh.runtime.admin.AdminServer admin)
            throws Exception {
        var answer = java.net.http.HttpClient.newHttpClient().send(java.net.http.HttpRequest.newBuilder(
                java.net.URI.create("http://127.0.0.1:" + admin.port(0) + "/config_dump?resource=dynamic_listeners"))
                .build(), java.net.http.HttpResponse.BodyHandlers.ofString()).body();
        java.util.Map<String, List<String>> states = new java.util.TreeMap<>();
        for (var c : new com.fasterxml.jackson.databind.ObjectMapper().readTree(answer).path("configs")) {
            List<String> names = new ArrayList<>();
            c.fieldNames().forEachRemaining(f -> {
                if (f.endsWith("_state")) {
                    names.add(f);
                }
            });
            states.put(c.path("name").asText(), names);
        }
        return states;
    }

    @Test
    void aRemovedOrReplacedListenerIsDrainingInTheConfigDumpAndCountedForTheDrainTimeAsEnvoysDrainingListeners()
            throws Exception {
        String in = listener("inbound", inboundPort, "INBOUND");
        String out = listener("outbound", outboundPort, "OUTBOUND");
        apply(dynamic(in + out));
        proxy.server.awaitBinds(Duration.ofSeconds(5));
        var registry = new io.micrometer.core.instrument.simple.SimpleMeterRegistry();
        proxy.snapshots.stats().bind(registry);
        var admin = dev.inmesh.runtime.admin.AdminServer.builder(proxy.vertx).snapshots(proxy.snapshots)
                .mount(dev.inmesh.runtime.admin.AdminServer.Mount.of("127.0.0.1", 0,
                        dev.inmesh.runtime.admin.AdminServer.Endpoint.CONFIG_DUMP)).build();
        admin.start().await(10, TimeUnit.SECONDS);
        try {
            // long enough for the checks below on a busy machine, which must all see the first drain still on
            proxy.server.drainTime(Duration.ofSeconds(6));
            assertEquals(java.util.Map.of("inbound", List.of("active_state"), "outbound", List.of("active_state")),
                    dynamicListenerStates(admin));

            // outbound removed; inbound's filter chain changed alone (drained in place: no draining listener)
            apply(dynamic(in.replace("stat_prefix: inbound", "stat_prefix: inbound2")));

            assertEquals(java.util.Map.of("inbound", List.of("active_state"), "outbound", List.of("draining_state")),
                    dynamicListenerStates(admin));
            assertEquals(1.0, registry.get("envoy_listener_manager_total_listeners_draining").gauge().value());

            // inbound moved to another port: replaced, its old version draining beside the new one
            int moved = LoopbackProxy.freePort();
            apply(dynamic(listener("inbound", moved, "INBOUND")));
            assertEquals(List.of("active_state", "draining_state"), dynamicListenerStates(admin).get("inbound"));
            assertEquals(2.0, registry.get("envoy_listener_manager_total_listeners_draining").gauge().value());

            // gone once the drain time is over
            for (long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(20); System.nanoTime() < end
                    && registry.get("envoy_listener_manager_total_listeners_draining").gauge().value() > 0; ) {
                Thread.sleep(50);
            }
            assertEquals(0.0, registry.get("envoy_listener_manager_total_listeners_draining").gauge().value());
            assertEquals(java.util.Map.of("inbound", List.of("active_state")), dynamicListenerStates(admin));
        } finally {
            admin.close().await(10, TimeUnit.SECONDS);
        }
    }

    /**
     * A listener on every address of {@code port} with two chains: one for connections to 127.0.0.1 and the default
     * one (127.0.0.2), whose connection manager's stat prefix is {@code defaultPrefix}.
     */
    private static String twoChains(int port, String defaultPrefix) {
        String l = Http1RequestsTest.listener("two", port, "").replace("address: 127.0.0.1", "address: 0.0.0.0");
        String body = l.substring(l.indexOf("    - filters:\n") + "    - filters:\n".length());
        return l.replace("    - filters:\n", "    - filter_chain_match: {prefix_ranges: [{address_prefix: 127.0.0.1, "
                + "prefix_len: 32}]}\n      filters:\n")
                + "    default_filter_chain:\n      filters:\n" + body.replace("stat_prefix: two", "stat_prefix: "
                + defaultPrefix);
    }

    @Test
    void aFilterChainOnlyUpdateDrainsTheChangedChainsConnectionsAndKeepsTheUnchangedOnes() throws Exception {
        int port = LoopbackProxy.freePort();
        String withTwo = yaml.replace("  clusters:\n", twoChains(port, "before") + "  clusters:\n");
        apply(withTwo);
        proxy.server.awaitBinds(Duration.ofSeconds(5));
        try (Client unchanged = new Client("127.0.0.1", port); Client changed = new Client("127.0.0.2", port)) {
            for (Client c : List.of(unchanged, changed)) {
                c.send("/");
                assertFalse(c.response().contains("connection: close"), "keep-alive before the update");
            }

            apply(withTwo.replace(twoChains(port, "before"), twoChains(port, "after")));

            changed.send("/");
            List<String> answer = changed.response();
            assertTrue(answer.contains("connection: close"), "the changed chain drains: " + answer);
            assertTrue(changed.closedByPeer());
            unchanged.send("/");
            answer = unchanged.response();
            assertTrue(answer.get(0).startsWith("http/1.1 200"), answer.toString());
            assertFalse(answer.contains("connection: close"), "the unchanged chain's connection stays: " + answer);
        }
    }

    /** The h2c clients of a test, held: Vert.x closes a client that is no longer reachable. */
    private final List<io.vertx.core.http.HttpClient> clients = new java.util.concurrent.CopyOnWriteArrayList<>();

    /** The outbound listener's connection manager drains its HTTP/2 connections with this {@code drain_timeout}. */
    /** 1.5 s: a stream racing with the shutdown notice reaches the proxy well before it on a loaded machine. */
    private static final String DRAIN_TIMEOUT = "drain_timeout: 1.5s";

    /** The outbound listener with its connection manager's {@code drain_timeout} set. */
    private String drainingOutbound() {
        return listener("outbound", outboundPort, "OUTBOUND", DRAIN_TIMEOUT);
    }

    /** The configuration with the outbound listener's {@code drain_timeout} set, applied. */
    private String withDrainTimeout() throws Exception {
        String config = yaml.replace(listener("outbound", outboundPort, "OUTBOUND"), drainingOutbound());
        apply(config);
        return config;
    }

    /**
     * What an h2c client connection to the outbound listener was sent: each answer ({@code 200 on 3}) and each GOAWAY
     * ({@code goaway 3}), in order; {@link #get} opens a stream.
     */
    private static final class RawH2c implements AutoCloseable {
        final List<String> frames = new java.util.concurrent.CopyOnWriteArrayList<>();
        final List<Long> nanos = new java.util.concurrent.CopyOnWriteArrayList<>();
        private final io.netty.channel.EventLoopGroup group = new io.netty.channel.MultiThreadIoEventLoopGroup(1,
                io.netty.channel.nio.NioIoHandler.newFactory());
        private final ConnectionLifetimeTest.H2cClient client;

        RawH2c(int port) throws InterruptedException {
            client = ConnectionLifetimeTest.H2cClient.connect(group, port, msg -> {
                if (msg instanceof io.netty.handler.codec.http2.Http2HeadersFrame h) {
                    add(h.headers().status() + " on " + h.stream().id());
                } else if (msg instanceof io.netty.handler.codec.http2.Http2GoAwayFrame g) {
                    add("goaway " + g.lastStreamId());
                }
            });
        }

        private void add(String frame) {
            nanos.add(System.nanoTime());
            frames.add(frame);
        }

        void get(String path) throws InterruptedException {
            client.channel().writeAndFlush(new io.netty.handler.codec.http2.DefaultHttp2HeadersFrame(
                    new io.netty.handler.codec.http2.DefaultHttp2Headers().method("GET").path(path).scheme("http")
                            .authority("svc"), true).stream(client.frames().newStream())).sync();
        }

        /** Waits until {@code n} frames came; the time the n-th came. */
        long await(int n) throws InterruptedException {
            for (int i = 0; i < 500 && frames.size() < n; i++) {
                Thread.sleep(10);
            }
            assertTrue(frames.size() >= n, "frames: " + frames);
            return nanos.get(n - 1);
        }

        boolean closed() throws InterruptedException {
            return client.channel().closeFuture().await(10, TimeUnit.SECONDS);
        }

        @Override
        public void close() throws Exception {
            client.channel().close();
            group.shutdownGracefully(0, 1, TimeUnit.SECONDS).sync();
        }
    }

    @Test
    void anHttp2ConnectionOfARemovedListenerGetsEnvoysTwoGoawaysDrainTimeoutApartAndServesARacingStream()
            throws Exception {
        String config = withDrainTimeout();
        try (RawH2c c = new RawH2c(outboundPort)) {
            c.get("/");
            c.await(1);

            apply(config.replace(drainingOutbound(), ""));

            // as Envoy's connection manager: the shutdown notice, with the highest stream id, so that a stream
            // racing with it is still taken; then drain_timeout later the final GOAWAY naming the last one taken,
            // and the connection closes once no stream is left
            long notice = c.await(2);
            assertEquals(List.of("200 on 3", "goaway " + Integer.MAX_VALUE), c.frames); // Netty's first id: 3
            c.get("/");
            long last = c.await(4);
            assertEquals(List.of("200 on 3", "goaway " + Integer.MAX_VALUE, "200 on 5", "goaway 5"), c.frames);
            assertTrue(last - notice >= 1_400_000_000L, "the final GOAWAY came before drain_timeout: "
                    + (last - notice) / 1_000_000 + " ms");
            assertTrue(c.closed(), "closed after the final GOAWAY");
        }
    }

    @Test
    void anHttp2StreamInFlightWhenItsListenerIsRemovedIsAnsweredAfterTheGoaways() throws Exception {
        String config = withDrainTimeout();
        try (RawH2c c = new RawH2c(outboundPort)) {
            c.get("/held");
            awaitHeld(1);

            apply(config.replace(drainingOutbound(), ""));

            // as Envoy's drain: both GOAWAYs, and the stream it took still runs to its answer (within the drain time)
            c.await(2);
            assertEquals(List.of("goaway " + Integer.MAX_VALUE, "goaway 3"), c.frames); // Netty's first id: 3
            held.get(0).complete();
            c.await(3);
            assertEquals("200 on 3", c.frames.get(2));
            assertTrue(c.closed(), "closed once its last stream was answered");
        }
    }

    @Test
    void aClientThatResetsItsConnectionBeforeItsAnswerHasItsUpstreamRequestReset() throws Exception {
        try (Client c = new Client(outboundPort)) {
            c.send("/held");
            awaitHeld(1);
            c.socket.setSoLinger(true, 0); // the close resets the connection (RST), not a half-close
        }
        // as Envoy on a downstream reset: the upstream request is reset (HTTP/1: its connection closed), not left
        // waiting for an answer nobody will read
        assertTrue(heldConnectionClosed.await(10, TimeUnit.SECONDS), "the upstream request is still open");
    }

    @Test
    void anHttp2StreamResetBeforeItsAnswerHasItsUpstreamRequestReset() throws Exception {
        io.vertx.core.http.HttpClient h2 = backends.createHttpClient(new io.vertx.core.http.HttpClientOptions()
                .setProtocolVersion(io.vertx.core.http.HttpVersion.HTTP_2).setHttp2ClearTextUpgrade(false));
        clients.add(h2);
        var request = h2.request(new io.vertx.core.http.RequestOptions().setHost("svc").setPort(outboundPort)
                        .setURI("/held")
                        .setServer(io.vertx.core.net.SocketAddress.inetSocketAddress(outboundPort, "127.0.0.1")))
                .await(10, TimeUnit.SECONDS);
        request.end();
        awaitHeld(1);
        request.reset(); // RST_STREAM; the connection stays

        assertTrue(heldConnectionClosed.await(10, TimeUnit.SECONDS), "the upstream request is still open");
    }

    @Test
    void aTcpProxyConnectionOfARemovedListenerIsClosedWhenTheDrainTimeIsOver() throws Exception {
        proxy.server.drainTime(Duration.ofSeconds(1));
        int echo = backends.createNetServer().connectHandler(so -> so.handler(so::write))
                .listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS).actualPort();
        int port = LoopbackProxy.freePort();
        String tcp = TcpRelayTest.config(port, "", "", echo);
        apply(tcp);
        proxy.server.awaitBinds(Duration.ofSeconds(5));
        try (Socket s = new Socket("127.0.0.1", port)) {
            s.setSoTimeout(10_000);
            s.getOutputStream().write("ping".getBytes(StandardCharsets.US_ASCII));
            assertEquals("ping", new String(s.getInputStream().readNBytes(4), StandardCharsets.US_ASCII));

            apply(yaml);

            long start = System.nanoTime();
            assertEquals(-1, s.getInputStream().read(), "the relay is closed");
            assertTrue(System.nanoTime() - start > 500_000_000L, "closed before the drain time was over");
        }
    }
}
