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

/** The values the router records for the access log's {@code %UPSTREAM_PROTOCOL%} and {@code %REQUEST_DURATION%}. */
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
}
