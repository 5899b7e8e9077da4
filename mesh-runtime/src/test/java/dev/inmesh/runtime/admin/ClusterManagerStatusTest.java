package dev.inmesh.runtime.admin;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.fasterxml.jackson.databind.JsonNode;
import dev.inmesh.runtime.snapshot.SnapshotHolder;
import dev.inmesh.runtime.upstream.Host;
import dev.inmesh.runtime.upstream.LocalOriginFailure;
import dev.inmesh.runtime.xds.EnvoyConfigReader;
import dev.inmesh.runtime.xds.EnvoyJson;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class ClusterManagerStatusTest {
    /** A bootstrap's static cluster with outlier detection and one host. */
    static final String STATIC = """
            static_resources:
              clusters:
              - name: agent
                type: STATIC
                outlier_detection: {consecutive_5xx: 100}
                circuit_breakers:
                  thresholds:
                  - {max_connections: 10, max_pending_requests: 20, max_requests: 30, max_retries: 4}
                  - {priority: HIGH, max_connections: 11}
                load_assignment:
                  cluster_name: agent
                  endpoints:
                  - locality: {region: r1, zone: z1, sub_zone: s1}
                    lb_endpoints:
                    - endpoint:
                        address: {socket_address: {address: 127.0.0.1, port_value: 15020}}
                        hostname: agent.local
                      load_balancing_weight: 3
                      metadata: {filter_metadata: {envoy.lb: {canary: true}}}
            """;

    /** An xDS EDS cluster with an EDS service name, and its endpoints. */
    static final String XDS = """
            resources:
            - "@type": type.googleapis.com/envoy.config.cluster.v3.Cluster
              name: outbound|9080||reviews.default.svc.cluster.local
              alt_stat_name: reviews_9080
              type: EDS
              eds_cluster_config: {eds_config: {ads: {}}, service_name: reviews-eds}
            - "@type": type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment
              cluster_name: reviews-eds
              endpoints:
              - lb_endpoints:
                - endpoint: {address: {socket_address: {address: 10.0.0.1, port_value: 9080}}}
            """;

    private static SnapshotHolder holder(String config) throws Exception {
        SnapshotHolder holder = new SnapshotHolder();
        holder.apply(EnvoyConfigReader.read(config));
        return holder;
    }

    private static Host agentHost(SnapshotHolder holder) {
        return holder.current().clusterManager().clusters().get("agent").hosts().iterator().next();
    }

    @Test
    void hostsAreListedInTheirLoadAssignmentsOrder() throws Exception {
        int[] ports = {9005, 9001, 9009, 9003, 9007, 9002, 9008};
        StringBuilder config = new StringBuilder("""
                static_resources:
                  clusters:
                  - name: c
                    type: STATIC
                    load_assignment:
                      cluster_name: c
                      endpoints:
                      - lb_endpoints:
                """);
        for (int port : ports) {
            config.append("        - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: ")
                    .append(port).append("}}}\n");
        }
        List<String> listed = new ArrayList<>();
        for (String line : new ClusterManagerStatus(holder(config.toString())).clusterStatusLines()) {
            if (line.endsWith("::health_flags::healthy")) {
                listed.add(line.split("::")[1]);
            }
        }
        assertEquals(java.util.Arrays.stream(ports).mapToObj(p -> "127.0.0.1:" + p).toList(), listed);
    }

    @Test
    void textHasEnvoysLinesInEnvoysOrderForAStaticClusterWithOutlierDetection() throws Exception {
        SnapshotHolder holder = holder(STATIC);
        Host h = agentHost(holder);
        h.stats().requestStarted();
        h.stats().requestSucceeded();
        h.stats().requestFinished();
        h.stats().requestStarted();
        h.stats().requestFailed();
        h.stats().requestFinished();
        h.stats().requestStarted();
        h.outlier().reportLocalOriginFailure(LocalOriginFailure.TIMEOUT);
        h.outlier().reportLocalOriginFailure(LocalOriginFailure.CONNECT_FAILED);

        List<String> lines = new ClusterManagerStatus(holder).clusterStatusLines();

        String p = "agent::127.0.0.1:15020::";
        assertEquals(List.of("agent::observability_name::agent",
                "agent::outlier::success_rate_average::-1",
                "agent::outlier::success_rate_ejection_threshold::-1",
                "agent::outlier::local_origin_success_rate_average::-1",
                "agent::outlier::local_origin_success_rate_ejection_threshold::-1",
                "agent::default_priority::max_connections::10",
                "agent::default_priority::max_pending_requests::20",
                "agent::default_priority::max_requests::30",
                "agent::default_priority::max_retries::4",
                "agent::high_priority::max_connections::11",
                "agent::high_priority::max_pending_requests::1024",
                "agent::high_priority::max_requests::1024",
                "agent::high_priority::max_retries::3",
                "agent::added_via_api::false",
                p + "cx_active::0", p + "cx_connect_fail::1", p + "cx_total::1", p + "rq_active::1",
                p + "rq_error::1", p + "rq_success::1", p + "rq_timeout::1", p + "rq_total::3",
                p + "hostname::agent.local", p + "health_flags::healthy", p + "weight::3", p + "region::r1",
                p + "zone::z1", p + "sub_zone::s1", p + "canary::true", p + "priority::0", p + "success_rate::-1",
                p + "local_origin_success_rate::-1"), lines);
    }

    @Test
    void underARetryBudgetMaxRetriesIsTheBudgetsLimitNowAsEnvoyPrintsIt() throws Exception {
        SnapshotHolder holder = holder(STATIC.replace("max_retries: 4}",
                "max_retries: 100, retry_budget: {budget_percent: {value: 50}, min_retry_concurrency: 3}}"));
        var breaker = holder.current().clusterManager().clusters().get("agent").circuitBreakers();
        java.util.function.Supplier<List<String>> maxRetries = () -> new ClusterManagerStatus(holder)
                .clusterStatusLines().stream().filter(l -> l.startsWith("agent::default_priority::max_retries::"))
                .toList();
        assertEquals(List.of("agent::default_priority::max_retries::3"), maxRetries.get(),
                "idle: the minimum retry concurrency, not max_retries");
        for (int i = 0; i < 10; i++) {
            breaker.tryStartRequest();
        }
        assertEquals(List.of("agent::default_priority::max_retries::5"), maxRetries.get(), "half of 10 active");
        JsonNode thresholds = EnvoyJson.tree(EnvoyJson.print(new ClusterManagerStatus(holder).clusters()))
                .at("/cluster_statuses/0/circuit_breakers/thresholds/0");
        assertEquals(5, thresholds.get("max_retries").asInt(), thresholds.toString());
    }

    @Test
    void anXdsClusterIsAddedViaApiWithItsObservabilityAndEdsServiceNamesAndNoOutlierLines() throws Exception {
        SnapshotHolder holder = holder(XDS);

        List<String> lines = new ClusterManagerStatus(holder).clusterStatusLines();

        String n = "outbound|9080||reviews.default.svc.cluster.local::";
        assertEquals(n + "observability_name::reviews_9080", lines.get(0));
        assertEquals(n + "default_priority::max_connections::1024", lines.get(1));
        assertEquals(n + "added_via_api::true", lines.get(9));
        assertEquals(n + "eds_service_name::reviews-eds", lines.get(10));
        assertEquals(n + "10.0.0.1:9080::cx_active::0", lines.get(11));
        assertEquals(0, lines.stream().filter(l -> l.contains("::outlier::")).count());
    }

    @Test
    void aHostOfAClusterWithHealthChecksIsFailedActiveHcUntilItsFirstCheckPasses() throws Exception {
        SnapshotHolder holder = holder(STATIC.replace("outlier_detection: {consecutive_5xx: 100}",
                "health_checks: [{timeout: 1s, interval: 5s, unhealthy_threshold: 2, healthy_threshold: 2,"
                        + " http_health_check: {path: /healthz}}]"));
        String p = "agent::127.0.0.1:15020::";
        assertEquals(true, new ClusterManagerStatus(holder).clusterStatusLines()
                .contains(p + "health_flags::/failed_active_hc"));
        JsonNode host = EnvoyJson.tree(EnvoyJson.print(new ClusterManagerStatus(holder).clusters()))
                .get("cluster_statuses").get(0).get("host_statuses").get(0);
        assertEquals(true, host.get("health_status").get("failed_active_health_check").asBoolean());
        assertEquals("HEALTHY", host.get("health_status").get("eds_health_status").asText());
    }

    @Test
    void theJsonFormIsEnvoysClustersWithTheSameHostFacts() throws Exception {
        SnapshotHolder holder = holder(STATIC);
        Host h = agentHost(holder);
        h.stats().requestStarted();
        h.stats().requestFailed();

        JsonNode json = EnvoyJson.tree(EnvoyJson.print(new ClusterManagerStatus(holder).clusters()));

        JsonNode c = json.get("cluster_statuses").get(0);
        assertEquals("agent", c.get("name").asText());
        assertEquals("agent", c.get("observability_name").asText());
        assertEquals(false, c.has("added_via_api")); // false: proto3 leaves it out
        assertEquals("HIGH", c.get("circuit_breakers").get("thresholds").get(1).get("priority").asText());
        assertEquals(11, c.get("circuit_breakers").get("thresholds").get(1).get("max_connections").asInt());
        JsonNode host = c.get("host_statuses").get(0);
        assertEquals("127.0.0.1", host.get("address").get("socket_address").get("address").asText());
        assertEquals(15020, host.get("address").get("socket_address").get("port_value").asInt());
        assertEquals("agent.local", host.get("hostname").asText());
        assertEquals(3, host.get("weight").asInt());
        assertEquals("z1", host.get("locality").get("zone").asText());
        assertEquals("HEALTHY", host.get("health_status").get("eds_health_status").asText());
        assertEquals("rq_error", host.get("stats").get(2).get("name").asText());
        assertEquals("1", host.get("stats").get(2).get("value").asText());
        assertEquals("GAUGE", host.get("stats").get(7).get("type").asText());
        var back = EnvoyConfigReader.read(json.toString());
        assertEquals("127.0.0.1:15020",
                back.endpoints().get("agent").endpoints().get(0).lbEndpoints().get(0).address().toString());
    }

    @Test
    void successRatesAreTheOnesTheDetectorComputed() throws Exception {
        SnapshotHolder holder = new SnapshotHolder();
        holder.apply(EnvoyConfigReader.read(STATIC.replace("outlier_detection: {consecutive_5xx: 100}",
                "outlier_detection: {consecutive_5xx: 100, success_rate_minimum_hosts: 1,"
                        + " success_rate_request_volume: 4}")));
        var cluster = holder.current().clusterManager().clusters().get("agent");
        Host h = cluster.hosts().iterator().next();
        for (int status : new int[] {200, 200, 200, 503}) {
            h.outlier().reportHttpStatus(status);
        }
        cluster.outlierDetector().runInterval();

        List<String> lines = new ClusterManagerStatus(holder).clusterStatusLines();

        assertEquals("agent::outlier::success_rate_average::75", lines.get(1));
        assertEquals("agent::outlier::success_rate_ejection_threshold::75", lines.get(2));
        assertEquals("agent::127.0.0.1:15020::success_rate::75", lines.get(lines.size() - 2));
        JsonNode host = EnvoyJson.tree(EnvoyJson.print(new ClusterManagerStatus(holder).clusters()))
                .get("cluster_statuses").get(0).get("host_statuses").get(0);
        assertEquals(75.0, host.get("success_rate").get("value").asDouble());
    }
}
