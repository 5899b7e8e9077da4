package dev.inmesh.runtime.router;

import static com.github.tomakehurst.wiremock.client.WireMock.any;
import static com.github.tomakehurst.wiremock.client.WireMock.ok;
import static com.github.tomakehurst.wiremock.client.WireMock.urlEqualTo;
import static dev.inmesh.runtime.router.RouterRig.cluster;
import static dev.inmesh.runtime.router.RouterRig.closedPort;
import static dev.inmesh.runtime.router.RouterRig.get;
import static dev.inmesh.runtime.router.RouterRig.routeToC;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.github.tomakehurst.wiremock.WireMockServer;
import dev.inmesh.runtime.accesslog.AccessLogEntry;
import dev.inmesh.runtime.accesslog.CommandFormat;
import dev.inmesh.runtime.stats.StreamInfo;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The values the router records for the access log: {@code %UPSTREAM_PROTOCOL%}, {@code %REQUEST_DURATION%}, and the
 * request's {@code :path} and {@code :authority} as its rewrites left them.
 */
class RouterAccessLogValuesTest {
    private final RouterRig rig = new RouterRig();

    @AfterEach
    void close() {
        rig.close();
    }

    private static String format(String f, StreamInfo info) {
        return CommandFormat.compile(f, false).format(AccessLogEntry.of(info, info.log()));
    }

    @Test
    void theUpstreamsProtocolAndTheRequestsDurationAreLoggedAndNoProtocolWithoutAnAnswer() {
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(urlEqualTo("/x")).willReturn(ok("fine")));
        var r = rig.call(rig.router(), get("/x"), routeToC(""), rig.clusters(cluster("c", wm.port())));
        String[] v = format("%UPSTREAM_PROTOCOL% %REQUEST_DURATION%", r.info()).split(" ");
        assertEquals("HTTP/1.1", v[0]);
        assertTrue(v[1].matches("\\d+") && Long.parseLong(v[1]) <= Long.parseLong(format("%DURATION%", r.info())),
                String.join(" ", v));
        var failed = rig.call(rig.router(), get("/x"), routeToC(""), rig.clusters(cluster("c", closedPort())));
        assertEquals(503, failed.status());
        assertEquals("-", format("%UPSTREAM_PROTOCOL%", failed.info()), "no upstream answered");
    }

    /**
     * Envoy's %RESPONSE_DURATION% runs from the request's start to the upstream response's first byte, so a body that
     * comes late is in it (the upstream answers once it has the body); %RESPONSE_TX_DURATION% runs from there to the
     * end of the response.
     */
    @Test
    void theResponseDurationRunsFromTheRequestsStartToTheUpstreamsAnswer() {
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(urlEqualTo("/x")).willReturn(ok("fine")));
        RouterRequest req = RouterRig.request(io.vertx.core.http.HttpMethod.POST, "/x", null);
        RequestBodyStream body = new RequestBodyStream();
        req.bodyStream(body);
        var result = rig.start(rig.router(), req, routeToC(""), rig.clusters(cluster("c", wm.port())));
        rig.ctx.runOnContext(v -> rig.vertx.setTimer(400, t -> {
            body.write(io.vertx.core.buffer.Buffer.buffer("late"));
            body.end();
        }));
        var r = RouterRig.await(result);
        assertEquals(200, r.status());
        String[] v = format("%RESPONSE_DURATION% %RESPONSE_TX_DURATION% %DURATION% %REQUEST_DURATION%", r.info())
                .split(" ");
        long rd = Long.parseLong(v[0]);
        long tx = Long.parseLong(v[1]);
        long d = Long.parseLong(v[2]);
        assertTrue(rd >= 400 && rd >= Long.parseLong(v[3]) && rd + tx <= d, String.join(" ", v));
        var failed = rig.call(rig.router(), get("/x"), routeToC(""), rig.clusters(cluster("c", closedPort())));
        assertEquals("- -", format("%RESPONSE_DURATION% %RESPONSE_TX_DURATION%", failed.info()), "no upstream answer");
    }

    /**
     * Envoy's %REQUEST_DURATION% is the time to the request's last byte received (lastDownstreamRxByteReceived),
     * "-" for a request the codec refused or timed out before its head ended: no last byte was received, however
     * long the wait (%DURATION% counts it).
     */
    @Test
    void aRequestWhoseHeadNeverEndedHasNoRequestDuration() throws Exception {
        Router router = rig.router();
        java.util.concurrent.CompletableFuture<StreamInfo> done = new java.util.concurrent.CompletableFuture<>();
        rig.ctx.runOnContext(v -> {
            RouterRequest rr = RouterRequest.unparsed(StreamInfo.Direction.INBOUND, "10.0.0.1:40000",
                    "10.0.0.2:8080", "HTTP/1.1").startedAt(System.nanoTime() - 60_000_000L);
            RouterResponse resp = router.localReply(rr, 408, "request timeout", "request_overall_timeout", null);
            done.complete(router.complete(resp, resp.localBody().length()));
        });
        StreamInfo info = done.get(10, java.util.concurrent.TimeUnit.SECONDS);
        assertEquals("408 -", format("%RESPONSE_CODE% %REQUEST_DURATION%", info));
        assertTrue(Long.parseLong(format("%DURATION%", info)) >= 60, format("%DURATION%", info));
    }

    @Test
    void theUpstreamHostNameIsTheEndpointsHostnameElseItsAddress() {
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(urlEqualTo("/x")).willReturn(ok("fine")));
        var plain = rig.call(rig.router(), get("/x"), routeToC(""), rig.clusters(cluster("c", wm.port())));
        assertEquals("127.0.0.1:" + wm.port() + " 127.0.0.1", format("%UPSTREAM_HOST_NAME% "
                + "%UPSTREAM_HOST_NAME_WITHOUT_PORT%", plain.info()));
        var named = rig.call(rig.router(), get("/x"), routeToC(""),
                rig.clusters(RouterRig.clusterWithHostname("c", wm.port(), "reviews-v1.example")));
        assertEquals("reviews-v1.example reviews-v1.example", format("%UPSTREAM_HOST_NAME% "
                + "%UPSTREAM_HOST_NAME_WITHOUT_PORT%", named.info()));
    }

    @Test
    void theLogReadsThePathAndAuthorityTheRouteRewroteAndTheCallersPathFromTheOriginalPathHeader() {
        // Envoy's router rewrites the request's own headers, which its access log reads afterwards: %REQ(:PATH)% and
        // %REQ(:AUTHORITY)% are what went upstream; the caller's path is in x-envoy-original-path
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(urlEqualTo("/v1/api/items?q=1")).willReturn(ok()));
        var r = rig.call(rig.router(), get("/api/items?q=1"),
                routeToC("prefix_rewrite: /v1/, host_rewrite_literal: backend.internal"),
                rig.clusters(cluster("c", wm.port())));
        assertEquals(200, r.status());
        assertEquals("/v1/api/items?q=1 backend.internal /api/items?q=1", format("%REQ(:PATH)% %REQ(:AUTHORITY)% "
                + "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%", r.info()));
        var plain = rig.call(rig.router(), get("/x"), routeToC(""), rig.clusters(cluster("c", wm.port())));
        assertEquals("/x svc.local /x", format("%REQ(:PATH)% %REQ(:AUTHORITY)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%",
                plain.info()), "nothing rewritten: the caller's");
    }
}
