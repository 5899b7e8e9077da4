package dev.inmesh.runtime.router;

import static com.github.tomakehurst.wiremock.client.WireMock.any;
import static com.github.tomakehurst.wiremock.client.WireMock.anyUrl;
import static com.github.tomakehurst.wiremock.client.WireMock.ok;
import static dev.inmesh.runtime.router.RouterRig.get;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import com.github.tomakehurst.wiremock.WireMockServer;
import com.github.tomakehurst.wiremock.verification.LoggedRequest;
import dev.inmesh.api.config.cluster.Cluster;
import dev.inmesh.api.config.cluster.DiscoveryType;
import dev.inmesh.api.config.cluster.LbPolicy;
import dev.inmesh.api.config.core.Metadata;
import dev.inmesh.runtime.stats.WorkloadInfo;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * Istio's peer metadata headers on outbound requests, as Istio's peer metadata filter sends them: not to a cluster
 * istiod marks {@code disable_mx}, and, where the filter skips external clusters (meshConfig's
 * {@code metadataExchangeHeaders} mode {@code IN_MESH}), not to {@code PassthroughCluster} nor to a cluster marked
 * {@code external}.
 */
class RouterPeerMetadataTest {

    private final RouterRig rig = new RouterRig();

    @AfterEach
    void close() {
        rig.close();
    }

    /** The peer metadata header the upstream got from a request through {@code cluster} ({@code istio} metadata). */
    private LoggedRequest sent(String cluster, Map<String, Object> istio, boolean skipExternal) {
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(anyUrl()).willReturn(ok("x")));
        Cluster c = Cluster.builder(cluster, DiscoveryType.STATIC).lbPolicy(LbPolicy.ROUND_ROBIN)
                .connectTimeout(Duration.ofSeconds(2)).loadAssignment(RouterRig.hosts(cluster, wm.port()))
                .metadata(new Metadata(istio.isEmpty() ? Map.of() : Map.of("istio", istio))).build();
        Router router = rig.router(new Router.Options(false, true, WorkloadInfo.UNKNOWN, "CgsKBE5BTUUSAxoBYQ==",
                "sidecar~10.1.0.7~productpage-v1-abc.default~default.svc.cluster.local"), null);
        RouterRequest req = get("/x");
        req.peerMetadataSkipExternal = skipExternal;
        var r = rig.call(router, req, RouterRig.table("name: r\nvirtual_hosts:\n- name: vh\n  domains: [\"*\"]\n"
                + "  routes:\n  - match: {prefix: /}\n    route: {cluster: \"" + cluster + "\"}\n"), rig.clusters(c));
        assertEquals(200, r.status());
        return wm.getAllServeEvents().get(0).getRequest();
    }

    @Test
    void aClusterIstiodMarksExternalGetsNoPeerMetadataWhereTheFilterSkipsExternalClusters() {
        LoggedRequest got = sent("outbound|443||api.example.com", Map.of("external", true), true);
        assertNull(got.getHeader("x-envoy-peer-metadata"));
        assertNull(got.getHeader("x-envoy-peer-metadata-id"));
        // the filter's default (mode ALWAYS): the headers go to every cluster
        got = sent("outbound|443||api.example.com", Map.of("external", true), false);
        assertEquals("CgsKBE5BTUUSAxoBYQ==", got.getHeader("x-envoy-peer-metadata"));
        assertEquals("sidecar~10.1.0.7~productpage-v1-abc.default~default.svc.cluster.local",
                got.getHeader("x-envoy-peer-metadata-id"));
    }

    @Test
    void thePassthroughClusterIsExternalAndAMeshClusterIsNot() {
        assertNull(sent("PassthroughCluster", Map.of(), true).getHeader("x-envoy-peer-metadata"));
        assertEquals("CgsKBE5BTUUSAxoBYQ==", sent("outbound|9080||reviews.default.svc.cluster.local",
                Map.of("default_original_port", 9080.0), true).getHeader("x-envoy-peer-metadata"));
    }

    @Test
    void aClusterMarkedDisableMxNeverGetsPeerMetadata() {
        // istiod's mark for a service whose endpoints all take HBONE: whatever the filter's mode
        LoggedRequest got = sent("outbound|9080||ratings.default.svc.cluster.local", Map.of("disable_mx", true),
                false);
        assertNull(got.getHeader("x-envoy-peer-metadata"));
        assertNull(got.getHeader("x-envoy-peer-metadata-id"));
    }
}
