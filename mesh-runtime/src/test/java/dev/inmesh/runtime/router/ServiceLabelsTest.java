package dev.inmesh.runtime.router;

import static com.github.tomakehurst.wiremock.client.WireMock.any;
import static com.github.tomakehurst.wiremock.client.WireMock.anyUrl;
import static com.github.tomakehurst.wiremock.client.WireMock.ok;
import static dev.inmesh.runtime.router.RouterRig.get;
import static org.junit.jupiter.api.Assertions.assertEquals;

import com.github.tomakehurst.wiremock.WireMockServer;
import dev.inmesh.api.config.cluster.Cluster;
import dev.inmesh.api.config.cluster.DiscoveryType;
import dev.inmesh.api.config.cluster.LbPolicy;
import dev.inmesh.api.config.core.Metadata;
import dev.inmesh.runtime.stats.MeshMetrics;
import dev.inmesh.runtime.stats.StreamInfos;
import io.micrometer.core.instrument.Tag;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The destination labels of an outbound request whose upstream sent no metadata exchange answer, as Istio's
 * client-side stats give them ({@code istio_stats.cc}, {@code populatePeerInfo}): the workload from the endpoint's
 * {@code istio.workload} only, the service from the cluster's {@code istio} metadata, else the request's Host; never
 * from the cluster's name.
 */
class ServiceLabelsTest {

    private final RouterRig rig = new RouterRig();

    @AfterEach
    void close() {
        rig.close();
    }

    /**
     * The labels of {@code istio_requests_total} for a request to {@code svc.local} through {@code cluster}, whose
     * cluster metadata is {@code istio} and whose one endpoint's {@code endpointIstio} (empty: none).
     */
    private Map<String, String> labels(String cluster, Map<String, Object> istio, Map<String, Object> endpointIstio) {
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(anyUrl()).willReturn(ok("x")));
        var endpoint = new dev.inmesh.api.config.endpoint.LbEndpoint(
                new dev.inmesh.api.config.core.SocketAddress("127.0.0.1", wm.port()), "", null, 1,
                new Metadata(endpointIstio.isEmpty() ? Map.of() : Map.of("istio", endpointIstio)));
        Cluster c = Cluster.builder(cluster, DiscoveryType.STATIC).lbPolicy(LbPolicy.ROUND_ROBIN)
                .connectTimeout(Duration.ofSeconds(2))
                .loadAssignment(new dev.inmesh.api.config.endpoint.ClusterLoadAssignment(cluster, List.of(
                        new dev.inmesh.api.config.endpoint.LocalityLbEndpoints(
                                dev.inmesh.api.config.endpoint.Locality.EMPTY, List.of(endpoint), 1, 0)),
                        dev.inmesh.api.config.endpoint.ClusterLoadAssignment.DEFAULT_OVERPROVISIONING_FACTOR))
                .metadata(new Metadata(istio.isEmpty() ? Map.of() : Map.of("istio", istio))).build();
        var r = rig.call(rig.router(), get("/x"), RouterRig.table("name: r\nvirtual_hosts:\n- name: vh\n"
                + "  domains: [\"*\"]\n  routes:\n  - match: {prefix: /}\n    route: {cluster: \"" + cluster + "\"}\n"),
                rig.clusters(c));
        assertEquals(200, r.status());
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        MeshMetrics.create(registry, StreamInfos.PRODUCTPAGE).record(r.info());
        Map<String, String> labels = new TreeMap<>();
        for (Tag t : registry.get("istio_requests").counter().getId().getTags()) {
            labels.put(t.getKey(), t.getValue());
        }
        return labels;
    }

    @Test
    void withoutMetadataTheDestinationIsUnknownAndTheServiceTheHostNotReadFromTheClustersName() {
        Map<String, String> l = labels("outbound|80|v9|backend2.ns2.svc.cluster.local", Map.of(), Map.of());
        assertUnknownWorkload(l);
        // as Istio's client side without a service in the cluster's metadata: the Host header, as it was sent
        assertEquals("svc.local", l.get("destination_service"), l.toString());
        assertEquals("svc.local", l.get("destination_service_name"), l.toString());
        assertEquals("unknown", l.get("destination_service_namespace"), l.toString());
    }

    @Test
    void theClustersIstioServiceNamesTheServiceButNoWorkload() {
        Map<String, String> l = labels("outbound|443|tls|api.example.com", Map.of("services", List.of(Map.of(
                "host", "api.example.com", "name", "api.example.com", "namespace", "egressns"))), Map.of());
        assertEquals("api.example.com", l.get("destination_service"), l.toString());
        assertEquals("api.example.com", l.get("destination_service_name"), l.toString());
        assertEquals("egressns", l.get("destination_service_namespace"), l.toString());
        assertUnknownWorkload(l);
    }

    @Test
    void aServiceWithoutANameInTheClustersMetadataIsNamedByTheFirstLabelOfItsHost() {
        Map<String, String> l = labels("outbound|9080||ratings.bookinfo.svc.cluster.local", Map.of("services",
                List.of(Map.of("host", "ratings.bookinfo.svc.cluster.local", "namespace", "bookinfo"))), Map.of());
        assertEquals("ratings.bookinfo.svc.cluster.local", l.get("destination_service"), l.toString());
        assertEquals("ratings", l.get("destination_service_name"), l.toString());
        assertEquals("bookinfo", l.get("destination_service_namespace"), l.toString());
    }

    @Test
    void anEndpointsIstioWorkloadNamesTheWorkloadButNeitherItsAppNorItsVersion() {
        // as Istio's convertEndpointMetadata: workload;namespace;canonical service;canonical revision;cluster
        Map<String, String> l = labels("outbound|9080||reviews.bookinfo.svc.cluster.local", Map.of(),
                Map.of("workload", "reviews-v1;bookinfo;reviews;v1;east"));
        assertEquals("reviews-v1", l.get("destination_workload"), l.toString());
        assertEquals("bookinfo", l.get("destination_workload_namespace"), l.toString());
        assertEquals("reviews", l.get("destination_canonical_service"), l.toString());
        assertEquals("v1", l.get("destination_canonical_revision"), l.toString());
        assertEquals("east", l.get("destination_cluster"), l.toString());
        assertEquals("unknown", l.get("destination_app"), "the encoding has no app: " + l);
        assertEquals("unknown", l.get("destination_version"), "nor a version: " + l);
    }

    @Test
    void anIstioWorkloadOfFewerThanFiveFieldsNamesNoWorkload() {
        assertUnknownWorkload(labels("outbound|9080||reviews.bookinfo.svc.cluster.local", Map.of(),
                Map.of("workload", "reviews-v1;bookinfo;reviews;v1")));
    }

    /** The destination workload of labels {@code l} is the peer's, which no metadata exchange nor endpoint gave. */
    private static void assertUnknownWorkload(Map<String, String> l) {
        assertEquals("unknown", l.get("destination_workload"), l.toString());
        assertEquals("unknown", l.get("destination_workload_namespace"), l.toString());
        assertEquals("unknown", l.get("destination_app"), l.toString());
        assertEquals("unknown", l.get("destination_version"), l.toString());
        assertEquals("unknown", l.get("destination_canonical_service"), l.toString());
        assertEquals("latest", l.get("destination_canonical_revision"), l.toString());
        assertEquals("unknown", l.get("destination_cluster"), l.toString());
    }
}
