package dev.inmesh.runtime.router;

import static com.github.tomakehurst.wiremock.client.WireMock.any;
import static com.github.tomakehurst.wiremock.client.WireMock.anyUrl;
import static com.github.tomakehurst.wiremock.client.WireMock.ok;
import static dev.inmesh.runtime.router.RouterRig.cluster;
import static dev.inmesh.runtime.router.RouterRig.get;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import com.github.tomakehurst.wiremock.WireMockServer;
import com.github.tomakehurst.wiremock.verification.LoggedRequest;
import dev.inmesh.runtime.upstream.ClusterManager;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * A weighted cluster's own {@code host_rewrite_literal}, which istiod writes when a VirtualService route with several
 * weighted destinations sets a destination's {@code headers.request.set} of {@code host} or {@code :authority}: the
 * picked cluster's literal becomes the upstream Host, and a route-level rewrite, applied after it as Envoy's route
 * entry does, wins over it.
 */
class RouterWeightedHostRewriteTest {
    private final RouterRig rig = new RouterRig();

    @AfterEach
    void close() {
        rig.close();
    }

    private static String split(String routeLevel) {
        return """
                name: r
                virtual_hosts:
                - name: vh
                  domains: ["*"]
                  routes:
                  - match: {prefix: /}
                    route:
                      %s
                      weighted_clusters:
                        clusters:
                        - name: v1
                          weight: 1
                          host_rewrite_literal: v1.reviews.internal
                          request_headers_to_add: [{header: {key: x-subset, value: v1}}]
                        - {name: v2, weight: 0, host_rewrite_literal: v2.reviews.internal}
                """.formatted(routeLevel);
    }

    private LoggedRequest callThroughSplit(String routeLevel) {
        WireMockServer v1 = rig.wiremock();
        v1.stubFor(any(anyUrl()).willReturn(ok()));
        WireMockServer v2 = rig.wiremock();
        v2.stubFor(any(anyUrl()).willReturn(ok()));
        ClusterManager clusters = rig.clusters(cluster("v1", v1.port()), cluster("v2", v2.port()));
        var r = rig.call(rig.router(), get("/reviews/1"), RouterRig.table(split(routeLevel)), clusters);
        assertEquals(200, r.status());
        assertEquals(0, v2.getAllServeEvents().size(), "a cluster of weight 0 is never picked");
        List<LoggedRequest> got = v1.getAllServeEvents().stream().map(e -> e.getRequest()).toList();
        assertEquals(1, got.size());
        return got.get(0);
    }

    @Test
    void thePickedWeightedClustersHostRewriteLiteralIsTheUpstreamHost() {
        LoggedRequest up = callThroughSplit("");
        assertEquals("v1.reviews.internal", up.getHeader("host"));
        assertEquals("v1", up.getHeader("x-subset"), "the cluster's own header rules still apply");
    }

    @Test
    void aRouteLevelHostRewriteLiteralWinsOverTheWeightedClustersOwn() {
        LoggedRequest up = callThroughSplit("host_rewrite_literal: route.reviews.internal");
        assertEquals("route.reviews.internal", up.getHeader("host"));
    }

    /**
     * As Envoy's weighted cluster entry, which sets the Host itself: its literal adds no {@code x-forwarded-host}
     * under the route's {@code append_x_forwarded_host} (it was appended), which only the route's own rewrites honour.
     */
    @Test
    void aWeightedClustersHostRewriteAddsNoForwardedHostUnderAppendXForwardedHost() {
        LoggedRequest up = callThroughSplit("append_x_forwarded_host: true");
        assertEquals("v1.reviews.internal", up.getHeader("host"));
        assertFalse(up.containsHeader("x-forwarded-host"), String.valueOf(up.getHeaders()));
    }

    /**
     * A route-level rewrite under {@code append_x_forwarded_host} replaces the Host the weighted cluster's literal
     * set before it: that Host is the one appended.
     */
    @Test
    void aRouteLevelRewriteAppendsTheHostTheWeightedClusterSet() {
        LoggedRequest up = callThroughSplit("host_rewrite_literal: route.reviews.internal\n"
                + "      append_x_forwarded_host: true");
        assertEquals("route.reviews.internal", up.getHeader("host"));
        assertEquals("v1.reviews.internal", up.getHeader("x-forwarded-host"));
    }
}
