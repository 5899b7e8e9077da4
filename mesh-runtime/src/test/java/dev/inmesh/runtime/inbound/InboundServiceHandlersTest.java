package dev.inmesh.runtime.inbound;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.runtime.snapshot.SnapshotHolder;
import dev.inmesh.runtime.stats.ResponseFlag;
import dev.inmesh.runtime.stats.StreamInfo;
import dev.inmesh.runtime.stats.WorkloadInfo;
import dev.inmesh.runtime.xds.EnvoyConfigReader;
import io.vertx.core.Handler;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.http.HttpServerResponse;
import io.vertx.core.http.HttpVersion;
import io.vertx.ext.web.Router;
import io.vertx.ext.web.client.HttpResponse;
import io.vertx.ext.web.client.WebClient;
import io.vertx.ext.web.client.WebClientOptions;
import io.vertx.ext.web.handler.LoggerFormat;
import io.vertx.ext.web.handler.LoggerHandler;
import io.vertx.ext.web.handler.ResponseTimeHandler;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * A service behind {@code mesh.inbound} that sets its own handlers on its response (its end, close, head's end and
 * body's end handlers, as a Vert.x Web router does for its {@code addEndHandler} and {@code addHeadersEndHandler})
 * has them run as Vert.x runs them, beside the connection manager's own: the request is still recorded (access log,
 * Istio's metrics) and its answer still carries the connection manager's headers, written over the service's as a
 * sidecar writes them over its application's.
 */
class InboundServiceHandlersTest {
    private static final String CONFIG = "static_resources:\n  listeners:\n" + InboundMeshFixture.VIRTUAL_INBOUND + """
                filter_chains:
                - filters:
                  - name: envoy.filters.network.http_connection_manager
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                      stat_prefix: inbound_0.0.0.0_9080
                      http_filters:
                      - name: envoy.filters.http.router
                        typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
                      route_config:
                        name: inbound|9080||
                        validate_clusters: false
                        virtual_hosts:
                        - name: inbound|http|9080
                          domains: ["*"]
                          routes:
                          - match: {prefix: /bounded}
                            route: {cluster: "inbound|9080||", timeout: 0s, max_stream_duration: {max_stream_duration: 10s}}
                          - match: {prefix: /short}
                            route: {cluster: "inbound|9080||", timeout: 0s, max_stream_duration: {max_stream_duration: 0.2s}}
                          - match: {prefix: /}
                            route: {cluster: "inbound|9080||", timeout: 0s}
            """;
    /** {@link #CONFIG} with a compressor filter before the router, as an Istio EnvoyFilter puts it. */
    private static final String COMPRESSING = CONFIG.replace("""
                      http_filters:
            """, """
                      http_filters:
                      - name: envoy.filters.http.compressor
                        typed_config:
                          "@type": type.googleapis.com/udpa.type.v1.TypedStruct
                          type_url: type.googleapis.com/envoy.extensions.filters.http.compressor.v3.Compressor
                          value:
                            response_direction_config:
                              common_config: {min_content_length: 10, content_type: [application/json]}
                            compressor_library:
                              name: text_optimized
                              typed_config:
                                "@type": type.googleapis.com/envoy.extensions.compression.gzip.compressor.v3.Gzip
            """);

    /**
     * {@link #CONFIG} with a Lua filter whose response scripts note the service's {@code x-service}: its default one
     * as the head goes, and one that reads the body (which holds the response until it ends) on {@code /body}.
     */
    private static final String LUA = CONFIG.replace("""
                      http_filters:
            """, """
                      http_filters:
                      - name: envoy.filters.http.lua
                        typed_config:
                          "@type": type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua
                          default_source_code:
                            inline_string: |
                              function envoy_on_response(h)
                                h:headers():add("x-lua-saw", h:headers():get("x-service") or "nothing")
                              end
                          source_codes:
                            body.lua:
                              inline_string: |
                                function envoy_on_response(h)
                                  h:body()
                                  h:headers():add("x-lua-saw", h:headers():get("x-service") or "nothing")
                                end
            """).replace("""
                          - match: {prefix: /bounded}
            """, """
                          - match: {prefix: /body}
                            route: {cluster: "inbound|9080||", timeout: 0s}
                            typed_per_filter_config:
                              envoy.filters.http.lua:
                                "@type": type.googleapis.com/envoy.extensions.filters.http.lua.v3.LuaPerRoute
                                name: body.lua
                          - match: {prefix: /bounded}
            """);

    Vertx vertx;
    /** The configuration above, and one without an inbound listener (requests go straight to the service). */
    SnapshotHolder configured;
    SnapshotHolder bare;
    WebClient http1;
    WebClient http2;
    final List<StreamInfo> logged = new CopyOnWriteArrayList<>();

    @BeforeEach
    void start() throws Exception {
        vertx = Vertx.vertx();
        configured = new SnapshotHolder();
        configured.apply(EnvoyConfigReader.read(CONFIG));
        bare = new SnapshotHolder();
        http1 = WebClient.create(vertx);
        http2 = WebClient.create(vertx, new WebClientOptions().setProtocolVersion(HttpVersion.HTTP_2)
                .setHttp2ClearTextUpgrade(false));
    }

    @AfterEach
    void stop() throws Exception {
        configured.close();
        bare.close();
        vertx.close().await(10, TimeUnit.SECONDS);
    }

    /** A server on 127.0.0.1 whose requests go through an {@link InboundHandler} on {@code holder} to {@code service}. */
    private int serve(SnapshotHolder holder, Handler<HttpServerRequest> service) throws Exception {
        return vertx.createHttpServer().requestHandler(new InboundHandler(service, holder, logged::add))
                .listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS).actualPort();
    }

    /** Waits until {@code n} requests were recorded; returns the last. */
    private StreamInfo recorded(int n) throws Exception {
        for (int i = 0; i < 250 && logged.size() < n; i++) {
            Thread.sleep(20);
        }
        assertEquals(n, logged.size(), logged.toString());
        return logged.get(n - 1);
    }

    /** What a test checks of the requests of one client on one path. */
    private interface Check {
        void check(WebClient client, String path) throws Exception;
    }

    /**
     * Runs {@code check} over HTTP/1.1 and HTTP/2, on a route without a stream duration and one with (the service's
     * response bounded by it).
     */
    private void onEachProtocolAndRoute(Check check) throws Exception {
        for (WebClient client : List.of(http1, http2)) {
            for (String path : List.of("/plain", "/bounded/x")) {
                check.check(client, path);
            }
        }
    }

    /**
     * A service that sets each handler of its response, noting in {@code events} when it runs; its head's end handler
     * adds a header and a {@code server} of its own. It answers {@code served}.
     */
    private static Handler<HttpServerRequest> settingItsHandlers(List<String> events) {
        return req -> {
            HttpServerResponse resp = req.response();
            resp.headersEndHandler(v -> {
                events.add(resp.headWritten() ? "headersEnd after the head" : "headersEnd");
                resp.putHeader("x-service", "head").putHeader("server", "app");
            });
            resp.bodyEndHandler(v -> events.add("bodyEnd"));
            resp.endHandler(v -> events.add("end"));
            resp.closeHandler(v -> events.add("close"));
            resp.end("served");
        };
    }

    @Test
    void aServiceThatSetsItsOwnResponseHandlersIsRecordedAndAnsweredWithTheConnectionManagersHeaders()
            throws Exception {
        List<String> events = new CopyOnWriteArrayList<>();
        int port = serve(configured, settingItsHandlers(events));
        onEachProtocolAndRoute((client, path) -> {
            events.clear();
            int requests = logged.size() + 1;
            HttpResponse<Buffer> r = client.get(port, "127.0.0.1", path).send().await(10, TimeUnit.SECONDS);
            String what = r.version() + " " + path;
            assertEquals(200, r.statusCode(), what);
            assertEquals("served", r.bodyAsString(), what);
            assertEquals("head", r.getHeader("x-service"), what + ": the service's head's end handler ran");
            // the connection manager's server_header_transformation (OVERWRITE) over the service's, as Envoy's
            assertEquals("envoy", r.getHeader("server"), what);
            assertNotNull(r.getHeader("date"), what);
            StreamInfo info = recorded(requests);
            assertEquals(200, info.responseCode(), what + ": " + info);
            assertEquals(path, info.path(), what);
            assertTrue(info.responseFlags().isEmpty(), what + ": " + info);
            assertEquals("inbound|9080||", info.upstreamCluster(), what);
            // in Vert.x's order; an HTTP/2 response's stream closes once it ended, which its close handler hears
            List<String> expected = r.version() == HttpVersion.HTTP_2
                    ? List.of("headersEnd", "bodyEnd", "end", "close") : List.of("headersEnd", "bodyEnd", "end");
            for (int i = 0; i < 250 && events.size() < expected.size(); i++) {
                Thread.sleep(20);
            }
            assertEquals(expected, events, what);
        });
    }

    @Test
    void withoutAnInboundListenerTheServicesResponseHandlersRunAndTheRequestIsRecorded() throws Exception {
        List<String> events = new CopyOnWriteArrayList<>();
        int port = serve(bare, settingItsHandlers(events));
        HttpResponse<Buffer> r = http1.get(port, "127.0.0.1", "/").send().await(10, TimeUnit.SECONDS);
        assertEquals("served", r.bodyAsString());
        assertEquals("head", r.getHeader("x-service"));
        assertEquals("app", r.getHeader("server"), "no connection manager: the service's own");
        StreamInfo info = recorded(1);
        assertEquals(200, info.responseCode(), info.toString());
        assertEquals(List.of("headersEnd", "bodyEnd", "end"), events);
    }

    @Test
    void aCallerThatLeavesIsRecordedDcAndTheServicesEndAndCloseHandlersRun() throws Exception {
        List<String> events = new CopyOnWriteArrayList<>();
        java.util.concurrent.CountDownLatch arrived = new java.util.concurrent.CountDownLatch(1);
        int port = serve(configured, req -> {
            // the service sets its handlers and never answers
            req.response().endHandler(v -> events.add("end")).closeHandler(v -> events.add("close"));
            arrived.countDown();
        });
        try (java.net.Socket s = new java.net.Socket("127.0.0.1", port)) {
            s.getOutputStream().write("GET /x HTTP/1.1\r\nhost: a\r\n\r\n".getBytes(
                    java.nio.charset.StandardCharsets.US_ASCII));
            assertTrue(arrived.await(10, TimeUnit.SECONDS));
        }
        StreamInfo info = recorded(1);
        assertEquals(0, info.responseCode(), info.toString());
        assertEquals("DC", ResponseFlag.format(info.responseFlags()));
        assertEquals("downstream_remote_disconnect", info.responseCodeDetails());
        for (int i = 0; i < 250 && events.size() < 2; i++) {
            Thread.sleep(20);
        }
        // as Vert.x's response closed before it was written: its end handler, then its close handler
        assertEquals(List.of("end", "close"), events);
    }

    @Test
    void aVertxWebRoutersResponseTimeAndLoggerHandlersRunAndTheRequestIsStillRecordedAndCounted() throws Exception {
        var registry = new io.micrometer.prometheusmetrics.PrometheusMeterRegistry(
                io.micrometer.prometheusmetrics.PrometheusConfig.DEFAULT);
        var metrics = dev.inmesh.runtime.stats.MeshMetrics.create(registry, WorkloadInfo.UNKNOWN);
        List<String> routerLog = new CopyOnWriteArrayList<>();
        Router router = Router.router(vertx);
        router.route().handler(ResponseTimeHandler.create());
        router.route().handler(LoggerHandler.create(LoggerFormat.CUSTOM).customFormatter((ctx, ms) -> {
            routerLog.add(ctx.request().path() + " " + ctx.response().getStatusCode());
            return "logged";
        }));
        router.get("/*").handler(ctx -> ctx.response().end("routed"));
        int port = vertx.createHttpServer().requestHandler(new InboundHandler(router, configured, info -> {
            metrics.record(info);
            logged.add(info);
        })).listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS).actualPort();
        onEachProtocolAndRoute((client, path) -> {
            int requests = logged.size() + 1;
            HttpResponse<Buffer> r = client.get(port, "127.0.0.1", path).send().await(10, TimeUnit.SECONDS);
            String what = r.version() + " " + path;
            assertEquals("routed", r.bodyAsString(), what);
            assertNotNull(r.getHeader("x-response-time"), what + ": ResponseTimeHandler's headers end handler");
            assertEquals("envoy", r.getHeader("server"), what);
            assertNotNull(r.getHeader("date"), what);
            assertEquals(200, recorded(requests).responseCode(), what);
            for (int i = 0; i < 250 && routerLog.size() < requests; i++) {
                Thread.sleep(20);
            }
            assertEquals(path + " 200", routerLog.get(requests - 1), what + ": LoggerHandler's end handler");
        });
        String scrape = registry.scrape();
        assertTrue(scrape.contains("istio_requests_total{") && scrape.contains("response_code=\"200\""), scrape);
    }

    @Test
    void aStreamDurationThatRunsOutAnswersInTheServicesPlaceAndTheServiceHearsItsResponseEndAndClose()
            throws Exception {
        List<String> events = new CopyOnWriteArrayList<>();
        int port = serve(configured, req -> {
            // the service sets its handlers and never answers: the route's 0.2 s run out
            HttpServerResponse resp = req.response();
            resp.headersEndHandler(v -> events.add("headersEnd")).bodyEndHandler(v -> events.add("bodyEnd"))
                    .endHandler(v -> events.add("end")).closeHandler(v -> events.add("close"));
        });
        HttpResponse<Buffer> r = http1.get(port, "127.0.0.1", "/short").send().await(10, TimeUnit.SECONDS);
        assertEquals(504, r.statusCode());
        assertEquals("downstream duration timeout", r.bodyAsString());
        assertEquals("envoy", r.getHeader("server"));
        StreamInfo info = recorded(1);
        assertEquals("max_duration_timeout", info.responseCodeDetails());
        // the local reply's head and body are the connection manager's, not the service's: only its end is heard,
        // and its close, as Vert.x tells a response its stream reset (and a sidecar's application sees its stream
        // go)
        for (int i = 0; i < 100 && events.size() < 2; i++) {
            Thread.sleep(20);
        }
        assertEquals(java.util.Set.of("end", "close"), java.util.Set.copyOf(events));
        assertEquals(2, events.size(), events.toString());
    }

    @Test
    void theFiltersReadTheHeadTheServiceCompletedInItsHeadersEndHandler() throws Exception {
        SnapshotHolder compressing = new SnapshotHolder();
        compressing.apply(EnvoyConfigReader.read(COMPRESSING));
        try {
            // the service's content type, one the filter leaves as it is, changed in its head's end handler to one it
            // compresses, as a Vert.x Web handler may change it: the compressor filter decides on the head the
            // service completed, as Envoy's on the head its application sent
            int port = serve(compressing, req -> req.response().putHeader("content-type", "application/octet-stream")
                    .headersEndHandler(v -> req.response().putHeader("content-type", "application/json"))
                    .end("{\"reviews\": [\"a fine book\", \"a fine book\"]}"));
            HttpResponse<Buffer> r = http1.get(port, "127.0.0.1", "/").putHeader("accept-encoding", "gzip").send()
                    .await(10, TimeUnit.SECONDS);
            assertEquals(200, r.statusCode());
            assertEquals("application/json", r.getHeader("content-type"));
            assertEquals("gzip", r.getHeader("content-encoding"));
        } finally {
            compressing.close();
        }
    }

    @Test
    void aFileTheServerCouldNotOpenSendsNoHeadAndTheServicesHeadersEndHandlerRunsForTheHeadItAnswersWithThen()
            throws Exception {
        List<String> events = new CopyOnWriteArrayList<>();
        int port = serve(configured, req -> {
            HttpServerResponse resp = req.response();
            resp.headersEndHandler(v -> {
                events.add("headersEnd " + resp.getStatusCode());
                resp.putHeader("x-service", "head");
            });
            // as Vert.x's, the file is opened before its head goes: a missing one fails with no head written; on
            // /short the service answers nothing more, and the route's stream duration runs out
            resp.sendFile("no-such-file.json").onFailure(e -> {
                if (!req.path().startsWith("/short")) {
                    resp.setStatusCode(404).end("no file");
                }
            });
        });
        onEachProtocolAndRoute((client, path) -> {
            events.clear();
            HttpResponse<Buffer> r = client.get(port, "127.0.0.1", path).send().await(10, TimeUnit.SECONDS);
            String what = r.version() + " " + path;
            assertEquals(404, r.statusCode(), what);
            assertEquals("no file", r.bodyAsString(), what);
            assertEquals("head", r.getHeader("x-service"), what);
            assertEquals(List.of("headersEnd 404"), events, what + ": once, for the head that went");
        });
        events.clear();
        HttpResponse<Buffer> r = http1.get(port, "127.0.0.1", "/short").send().await(10, TimeUnit.SECONDS);
        assertEquals(504, r.statusCode());
        assertNull(r.getHeader("x-service"), "the connection manager's answer in the service's place");
        assertEquals(List.of(), events);
    }

    @Test
    void theServicesHeadersEndHandlerReadsTheContentLengthAndTypeTheServerSetAsVertxRunsItAfterThem()
            throws Exception {
        java.nio.file.Path file = java.nio.file.Files.createTempFile("inmesh", ".json");
        try {
            java.nio.file.Files.writeString(file, "{\"ratings\": 5}");
            List<String> events = new CopyOnWriteArrayList<>();
            int port = serve(configured, req -> {
                HttpServerResponse resp = req.response();
                resp.headersEndHandler(v -> events.add(resp.headers().get("content-type") + " "
                        + resp.headers().get("content-length")));
                if (req.path().endsWith("/file")) {
                    resp.sendFile(file.toString());
                } else {
                    resp.end("served");
                }
            });
            onEachProtocolAndRoute((client, path) -> {
                events.clear();
                HttpResponse<Buffer> r = client.get(port, "127.0.0.1", path + "/body").send()
                        .await(10, TimeUnit.SECONDS);
                String what = r.version() + " " + path;
                assertEquals("served", r.bodyAsString(), what);
                // Vert.x sets the length of a body sent whole in its end before it runs the head's end handler
                assertEquals(List.of("null 6"), events, what + " end(buffer)");
                events.clear();
                r = client.get(port, "127.0.0.1", path + "/file").send().await(10, TimeUnit.SECONDS);
                assertEquals("{\"ratings\": 5}", r.bodyAsString(), what);
                assertEquals(List.of("application/json 14"), events, what + " sendFile");
            });
        } finally {
            java.nio.file.Files.delete(file);
        }
    }

    @Test
    void anHttp2StreamThatClosesAsItsAnswerEndsRunsTheServicesCloseHandlerAfterTheRequestWasRecorded()
            throws Exception {
        List<String> events = new CopyOnWriteArrayList<>();
        int port = serve(configured, req -> {
            HttpServerResponse resp = req.response();
            resp.endHandler(v -> events.add("end, recorded " + logged.size()))
                    .closeHandler(v -> events.add("close, recorded " + logged.size()));
            // answered after the request was read whole: the stream closes within the answer's end
            vertx.runOnContext(v -> resp.end("served"));
        });
        HttpResponse<Buffer> r = http2.get(port, "127.0.0.1", "/").send().await(10, TimeUnit.SECONDS);
        assertEquals("served", r.bodyAsString());
        assertEquals(200, recorded(1).responseCode());
        for (int i = 0; i < 250 && events.size() < 2; i++) {
            Thread.sleep(20);
        }
        assertEquals(List.of("end, recorded 1", "close, recorded 1"), events);
    }

    @Test
    void aLuaResponseScriptReadsTheHeadTheServiceCompletedInItsHeadersEndHandler() throws Exception {
        SnapshotHolder lua = new SnapshotHolder();
        lua.apply(EnvoyConfigReader.read(LUA));
        try {
            List<String> events = new CopyOnWriteArrayList<>();
            int port = serve(lua, settingItsHandlers(events));
            // as the head goes, and with the body held for body() until the service ended it
            for (String path : List.of("/plain", "/body")) {
                HttpResponse<Buffer> r = http1.get(port, "127.0.0.1", path).send().await(10, TimeUnit.SECONDS);
                assertEquals("served", r.bodyAsString(), path);
                assertEquals("head", r.getHeader("x-lua-saw"), path);
            }
        } finally {
            lua.close();
        }
    }
}
