package dev.inmesh.runtime.tools;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.google.protobuf.Struct;
import com.google.protobuf.Value;
import dev.inmesh.runtime.xds.EnvoyJson;
import io.envoyproxy.envoy.config.cluster.v3.Cluster;
import io.envoyproxy.envoy.config.core.v3.Metadata;
import io.envoyproxy.envoy.config.endpoint.v3.ClusterLoadAssignment;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The cluster and endpoint tables from xDS messages (their end-to-end test waits for the cluster parsers). */
class ProxyConfigWriterTest {
    static final String CLUSTERS = """
            - name: "outbound|9080|v2|reviews.default.svc.cluster.local"
              type: EDS
              eds_cluster_config: {service_name: "outbound|9080|v2|reviews.default.svc.cluster.local"}
              metadata:
                filter_metadata:
                  istio: {config: /apis/networking.istio.io/v1alpha3/namespaces/default/destination-rule/reviews}
            - name: "outbound|9080||reviews.default.svc.cluster.local"
              type: EDS
              eds_cluster_config: {service_name: "outbound|9080||reviews.default.svc.cluster.local"}
            - name: "inbound|9080||"
              type: ORIGINAL_DST
              lb_policy: CLUSTER_PROVIDED
            - name: BlackHoleCluster
              type: STATIC
            - name: PassthroughCluster
              type: ORIGINAL_DST
              lb_policy: CLUSTER_PROVIDED
            - name: "outbound|9080|v1|reviews.default.svc.cluster.local"
              type: EDS
              eds_cluster_config: {service_name: "outbound|9080|v1|reviews.default.svc.cluster.local"}
            """;

    static final String ENDPOINTS = """
            - cluster_name: "outbound|9080||reviews.default.svc.cluster.local"
              endpoints:
              - lb_endpoints:
                - endpoint: {address: {socket_address: {address: 10.244.0.193, port_value: 9080}}}
                  health_status: HEALTHY
                - endpoint: {address: {socket_address: {address: 10.244.0.192, port_value: 9080}}}
                  health_status: UNHEALTHY
            - cluster_name: "outbound|9080|v2|reviews.default.svc.cluster.local"
              endpoints:
              - lb_endpoints:
                - endpoint: {address: {socket_address: {address: 10.244.0.193, port_value: 9080}}}
            - cluster_name: sds-grpc
              endpoints:
              - lb_endpoints:
                - endpoint: {address: {pipe: {path: ./var/run/secrets/workload-spiffe-uds/socket}}}
            """;

    static List<Cluster> clusters() throws Exception {
        List<Cluster> out = new ArrayList<>();
        for (var n : EnvoyJson.tree(CLUSTERS)) {
            out.add(EnvoyJson.toMessage(n, Cluster.class));
        }
        return out;
    }

    static List<ClusterLoadAssignment> endpoints() throws Exception {
        List<ClusterLoadAssignment> out = new ArrayList<>();
        for (var n : EnvoyJson.tree(ENDPOINTS)) {
            out.add(EnvoyJson.toMessage(n, ClusterLoadAssignment.class));
        }
        return out;
    }

    private static ProxyConfigWriter.Filters filters(Integer port, String fqdn, String direction, String subset) {
        return new ProxyConfigWriter.Filters(port, null, null, null, fqdn, direction, subset, null, null);
    }

    @Test
    void tabulatesClustersByHostSubsetPortAndDirection() throws Exception {
        String table = ProxyConfigWriter.clusterSummary(ProxyConfigWriter.clusters(clusters(),
                ProxyConfigWriter.Filters.NONE));

        assertEquals("""
                SERVICE FQDN                          PORT     SUBSET     DIRECTION     TYPE             DESTINATION RULE
                                                      9080     -          inbound       ORIGINAL_DST    \s
                BlackHoleCluster                      -        -          -             STATIC          \s
                PassthroughCluster                    -        -          -             ORIGINAL_DST    \s
                reviews.default.svc.cluster.local     9080     -          outbound      EDS             \s
                reviews.default.svc.cluster.local     9080     v1         outbound      EDS             \s
                reviews.default.svc.cluster.local     9080     v2         outbound      EDS              reviews.default
                """, table);
    }

    @Test
    void filtersClustersAsIstioctlDoes() throws Exception {
        String table = ProxyConfigWriter.clusterSummary(ProxyConfigWriter.clusters(clusters(),
                filters(9080, "reviews", "outbound", "v2")));

        assertEquals("""
                SERVICE FQDN                          PORT     SUBSET     DIRECTION     TYPE     DESTINATION RULE
                reviews.default.svc.cluster.local     9080     v2         outbound      EDS      reviews.default
                """, table);
    }

    @Test
    void tabulatesEndpointsByAddressPortAndCluster() throws Exception {
        String table = ProxyConfigWriter.endpointSummary(ProxyConfigWriter.endpoints(
                ClusterStatuses.fromLoadAssignments(endpoints()), ProxyConfigWriter.Filters.NONE));

        assertEquals("""
                ENDPOINT                                                STATUS        OUTLIER CHECK     CLUSTER
                10.244.0.192:9080                                       UNHEALTHY     OK                outbound|9080||reviews.default.svc.cluster.local
                10.244.0.193:9080                                       HEALTHY       OK                outbound|9080|v2|reviews.default.svc.cluster.local
                10.244.0.193:9080                                       HEALTHY       OK                outbound|9080||reviews.default.svc.cluster.local
                unix://./var/run/secrets/workload-spiffe-uds/socket     HEALTHY       OK                sds-grpc
                """, table);
    }

    @Test
    void filtersEndpointsByStatusAndCluster() throws Exception {
        var f = new ProxyConfigWriter.Filters(null, null, null, null, null, null, null,
                "outbound|9080||reviews.default.svc.cluster.local", "healthy");

        assertEquals("""
                ENDPOINT              STATUS      OUTLIER CHECK     CLUSTER
                10.244.0.193:9080     HEALTHY     OK                outbound|9080||reviews.default.svc.cluster.local
                """, ProxyConfigWriter.endpointSummary(ProxyConfigWriter.endpoints(
                ClusterStatuses.fromLoadAssignments(endpoints()), f)));
    }

    @Test
    void namesTheIstioConfigOfEitherApiVersionAsIstioctlDoes() {
        assertEquals("reviews.default", ProxyConfigWriter.describeManagement(istioConfig(
                "/apis/networking.istio.io/v1/namespaces/default/virtual-service/reviews"), true));
        assertEquals("reviews.bookinfo", ProxyConfigWriter.describeManagement(istioConfig(
                "/apis/networking.istio.io/v1alpha3/namespaces/bookinfo/destination-rule/reviews"), true));
        assertEquals("<unknown>", ProxyConfigWriter.describeManagement(istioConfig(
                "/apis/networking.istio.io/v1beta1/namespaces/default/virtual-service/reviews"), true));
        assertEquals("", ProxyConfigWriter.describeManagement(istioConfig(
                "/apis/networking.istio.io/v1/namespaces/default/virtual-service"), true));
    }

    private static Metadata istioConfig(String path) {
        return Metadata.newBuilder().putFilterMetadata("istio", Struct.newBuilder()
                .putFields("config", Value.newBuilder().setStringValue(path).build()).build()).build();
    }
}
