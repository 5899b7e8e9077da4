package dev.inmesh.runtime.router;

import static com.github.tomakehurst.wiremock.client.WireMock.any;
import static com.github.tomakehurst.wiremock.client.WireMock.anyUrl;
import static com.github.tomakehurst.wiremock.client.WireMock.ok;
import static dev.inmesh.runtime.router.RouterRig.cluster;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.github.tomakehurst.wiremock.WireMockServer;
import com.github.tomakehurst.wiremock.verification.LoggedRequest;
import dev.inmesh.runtime.stats.PeerMetadata;
import dev.inmesh.runtime.stats.StreamInfo;
import dev.inmesh.runtime.stats.WorkloadInfo;
import dev.inmesh.runtime.upstream.ClusterManager;
import io.vertx.core.MultiMap;
import io.vertx.core.http.HttpMethod;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** The router on the inbound side of the standalone proxy (15006 to {@code inbound|PORT||}), as Istio's sidecar. */
class RouterInboundTest {
    private final RouterRig rig = new RouterRig();

    @AfterEach
    void close() {
        rig.close();
    }

    private static RouterRequest inbound(String... headerPairs) {
        MultiMap h = MultiMap.caseInsensitiveMultiMap();
        for (int i = 0; i + 1 < headerPairs.length; i += 2) {
            h.add(headerPairs[i], headerPairs[i + 1]);
        }
        return new RouterRequest(StreamInfo.Direction.INBOUND, HttpMethod.GET, "/reviews/0", "reviews:9080", "http",
                h, null, "10.1.0.7:41000", "10.1.0.9:9080", null, "HTTP/1.1");
    }

    @Test
    void theCallersPeerMetadataNamesTheSourceAndIsNotPassedToTheApplication() {
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(anyUrl()).willReturn(ok("app")));
        ClusterManager clusters = rig.clusters(cluster("c", wm.port()));
        WorkloadInfo caller = new WorkloadInfo("productpage-v1", "default", "productpage", "v1");
        RouterRig.Result r = rig.call(rig.router(), inbound("x-envoy-peer-metadata",
                PeerMetadata.encode(caller, "Kubernetes"), "x-envoy-peer-metadata-id",
                "sidecar~10.1.0.7~productpage-v1-abc.default~default.svc.cluster.local"),
                RouterRig.routeToC(""), clusters);
        assertEquals(200, r.status());
        assertEquals("productpage-v1", r.info().peer().workload());
        assertEquals("default", r.info().peer().namespace());
        assertEquals("productpage", r.info().peer().app());
        assertEquals("Kubernetes", r.info().peer().cluster());
        LoggedRequest seen = wm.getAllServeEvents().get(0).getRequest();
        assertFalse(seen.containsHeader("x-envoy-peer-metadata"));
        assertFalse(seen.containsHeader("x-envoy-peer-metadata-id"));
    }

    @Test
    void withoutPeerMetadataTheSourceIsUnknownNotTheDestinationService() {
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(anyUrl()).willReturn(ok("app")));
        // what Istio's inbound clusters carry: the service the port belongs to
        dev.inmesh.api.config.cluster.Cluster base = cluster("inbound|9080||", wm.port());
        dev.inmesh.api.config.cluster.Cluster withService = base.toBuilder().metadata(
                new dev.inmesh.api.config.core.Metadata(java.util.Map.of("istio",
                        java.util.Map.of("services", java.util.List.of(java.util.Map.of(
                                "host", "reviews.default.svc.cluster.local", "name", "reviews",
                                "namespace", "default")))))).build();
        ClusterManager clusters = rig.clusters(withService);
        RouterRig.Result r = rig.call(rig.router(), inbound(), RouterRig.table("name: r\nvirtual_hosts:\n"
                + "- name: vh\n  domains: [\"*\"]\n  routes:\n  - match: {prefix: /}\n"
                + "    route: {cluster: \"inbound|9080||\"}\n"), clusters);
        assertEquals(200, r.status());
        assertEquals(WorkloadInfo.UNKNOWN, r.info().peer());
        assertEquals("reviews.default.svc.cluster.local", r.info().destinationService());
    }

    @Test
    void aForwardedClientCertFromAPlaintextCallerIsNotPassedToTheApplication() {
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(anyUrl()).willReturn(ok("app")));
        ClusterManager clusters = rig.clusters(cluster("c", wm.port()));
        RouterRig.Result r = rig.call(rig.router(), inbound("x-forwarded-client-cert",
                "By=spiffe://cluster.local/ns/default/sa/reviews;URI=spiffe://cluster.local/ns/default/sa/admin"),
                RouterRig.routeToC(""), clusters);
        assertEquals(200, r.status());
        assertFalse(wm.getAllServeEvents().get(0).getRequest().containsHeader("x-forwarded-client-cert"));
    }

    @Test
    void theAccessLogsUpstreamLocalAddressIsTheInboundPassthroughSource() {
        // Istio's inbound clusters bind 127.0.0.6 (upstream_bind_config): the access log shows that source
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(anyUrl()).willReturn(ok("app")));
        dev.inmesh.api.config.cluster.Cluster base = cluster("c", wm.port());
        dev.inmesh.api.config.cluster.Cluster bound = base.toBuilder()
                .upstreamBindAddress(new dev.inmesh.api.config.core.SocketAddress("127.0.0.6", 0)).build();
        RouterRig.Result r = rig.call(rig.router(), inbound(), RouterRig.routeToC(""), rig.clusters(bound));
        assertEquals(200, r.status());
        String local = r.info().upstreamLocalAddress();
        assertTrue(local != null && local.startsWith("127.0.0.6:") && !local.endsWith(":0"), String.valueOf(local));
    }

    /**
     * A dual-stack pod's inbound cluster ({@code extra_source_addresses}, istiod's {@code ::6} beside
     * {@code 127.0.0.6}; here 127.0.0.2 and ::1 on loopback): a connection to an IPv6 host binds the IPv6 source, one
     * to an IPv4 host the IPv4 source, as Envoy's default local address selector picks them.
     */
    @Test
    void aDualStackClustersConnectionsBindTheSourceAddressOfTheHostsIpVersion() throws Exception {
        for (String host : java.util.List.of("::1", "127.0.0.1")) {
            int port = rig.vertx.createHttpServer().requestHandler(req -> req.response()
                    .end(req.remoteAddress().hostAddress())).listen(0, host)
                    .await(5, java.util.concurrent.TimeUnit.SECONDS).actualPort();
            dev.inmesh.api.config.cluster.Cluster c = new dev.inmesh.runtime.xds.ClusterParser().parse(
                    dev.inmesh.runtime.xds.EnvoyJson.toMessage(dev.inmesh.runtime.xds.EnvoyJson.tree("""
                            name: c
                            type: STATIC
                            connect_timeout: 1s
                            upstream_bind_config:
                              source_address: {address: 127.0.0.2, port_value: 0}
                              extra_source_addresses: [{address: {address: "::1", port_value: 0}}]
                            load_assignment:
                              cluster_name: c
                              endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: "%s", port_value: %d}}}}]}]
                            """.formatted(host, port)), io.envoyproxy.envoy.config.cluster.v3.Cluster.class));
            RouterRig.Result r = rig.call(rig.router(), inbound(), RouterRig.routeToC(""), rig.clusters(c));
            assertEquals(200, r.status());
            String from = r.body();
            assertTrue(host.equals("::1") ? from.equals("0:0:0:0:0:0:0:1") || from.equals("::1")
                    : from.equals("127.0.0.2"), host + " saw " + from);
        }
    }
}
