package dev.inmesh.runtime.tools;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code proxy-config all}: istioctl's full summary, as in its testdata {@code config_dump_summary.txt}. */
class ProxyConfigAllCommandTest {
    /** A sidecar's dump: bootstrap with Istio's node metadata, a static and an EDS cluster, a listener, a route. */
    static final String DUMP = """
            {"configs": [
             {"@type": "type.googleapis.com/envoy.admin.v3.BootstrapConfigDump",
              "bootstrap": {"node": {"id": "sidecar~10.244.0.15~productpage-v1.default~default.svc.cluster.local",
                "metadata": {"ISTIO_VERSION": "1.24.2", "ISTIO_PROXY_SHA": "istio-proxy:0d4dc4e1b7b5"},
                "user_agent_build_version": {"version": {"major_number": 1, "minor_number": 32, "patch": 3},
                  "metadata": {"revision.status": "Clean", "build.type": "RELEASE", "ssl.version": "BoringSSL"}}}}},
             {"@type": "type.googleapis.com/envoy.admin.v3.ClustersConfigDump",
              "static_clusters": [{"cluster": {"@type": "type.googleapis.com/envoy.config.cluster.v3.Cluster",
                "name": "prometheus_stats", "type": "STATIC",
                "load_assignment": {"cluster_name": "prometheus_stats", "endpoints": [{"lb_endpoints": [
                  {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 15000}}}}]}]}}}],
              "dynamic_active_clusters": [{"cluster": {"@type": "type.googleapis.com/envoy.config.cluster.v3.Cluster",
                "name": "outbound|9080||reviews.default.svc.cluster.local", "type": "EDS",
                "eds_cluster_config": {"eds_config": {"ads": {}}}}}]},
             {"@type": "type.googleapis.com/envoy.admin.v3.ListenersConfigDump",
              "dynamic_listeners": [{"name": "0.0.0.0_9080", "active_state": {"listener": {
                "@type": "type.googleapis.com/envoy.config.listener.v3.Listener", "name": "0.0.0.0_9080",
                "address": {"socket_address": {"address": "0.0.0.0", "port_value": 9080}},
                "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager",
                  "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.network.\
            http_connection_manager.v3.HttpConnectionManager",
                    "stat_prefix": "outbound_0.0.0.0_9080", "rds": {"route_config_name": "9080"},
                    "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {
                      "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}]}}]}]}}}]},
             {"@type": "type.googleapis.com/envoy.admin.v3.RoutesConfigDump",
              "dynamic_route_configs": [{"route_config": {
                "@type": "type.googleapis.com/envoy.config.route.v3.RouteConfiguration", "name": "9080",
                "virtual_hosts": [{"name": "reviews.default.svc.cluster.local:9080",
                  "domains": ["reviews.default.svc.cluster.local"],
                  "routes": [{"match": {"prefix": "/"},
                    "route": {"cluster": "outbound|9080||reviews.default.svc.cluster.local"}}]}]}}]},
             {"@type": "type.googleapis.com/envoy.admin.v3.EndpointsConfigDump",
              "static_endpoint_configs": [{"endpoint_config": {
                "@type": "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment",
                "cluster_name": "prometheus_stats", "endpoints": [{"lb_endpoints": [{"endpoint": {"address":
                  {"socket_address": {"address": "127.0.0.1", "port_value": 15000}}}}]}]}}],
              "dynamic_endpoint_configs": [{"endpoint_config": {
                "@type": "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment",
                "cluster_name": "outbound|9080||reviews.default.svc.cluster.local",
                "endpoints": [{"locality": {"region": "us-east1", "zone": "us-east1-b"}, "lb_endpoints": [
                  {"endpoint": {"address": {"socket_address": {"address": "10.244.0.12", "port_value": 9080}}},
                   "health_status": "HEALTHY"}]}]}}]}
            ]}
            """;

    @TempDir
    Path dir;
    private final ProxyConfigRun pc = new ProxyConfigRun();

    @Test
    void printsIstioctlsFullSummaryWithNamesAndNoSectionHeaders() throws Exception {
        Path dump = dir.resolve("config_dump.json");
        Files.writeString(dump, DUMP);

        assertEquals(0, pc.run("all", "-f", dump.toString()), pc.err());

        assertEquals("""
                Istio Version:       1.24.2
                Istio Proxy Version: 0d4dc4e1b7b5
                Envoy Version:       1.32.3/Clean/RELEASE/BoringSSL

                NAME                                                         SERVICE FQDN                          PORT     SUBSET     DIRECTION     TYPE       DESTINATION RULE
                cluster/prometheus_stats                                     cluster/prometheus_stats              -        -          -             STATIC    \s
                cluster/outbound|9080||reviews.default.svc.cluster.local     reviews.default.svc.cluster.local     9080     -          outbound      EDS       \s

                NAME                  ADDRESSES PORT MATCH DESTINATION
                listener/0.0.0.0_9080 0.0.0.0   9080 ALL   Route: 9080

                NAME           VHOST NAME                                 DOMAINS                               MATCH     VIRTUAL SERVICE
                route/9080     reviews.default.svc.cluster.local:9080     reviews.default.svc.cluster.local     /*       \s

                No active or warming secrets found.

                NAME                          STATUS      LOCALITY                CLUSTER
                endpoint/127.0.0.1:15000      UNKNOWN                             prometheus_stats
                endpoint/10.244.0.12:9080     HEALTHY     us-east1/us-east1-b     outbound|9080||reviews.default.svc.cluster.local
                """, pc.out());
    }

    @Test
    void withoutIstioMetadataTheBootstrapSectionHasTheEnvoyVersionAlone() {
        assertEquals("Envoy Version: 0.0.0\n", ProxyConfigWriter.bootstrapSummary(
                com.fasterxml.jackson.databind.node.JsonNodeFactory.instance.objectNode()));
    }
}
