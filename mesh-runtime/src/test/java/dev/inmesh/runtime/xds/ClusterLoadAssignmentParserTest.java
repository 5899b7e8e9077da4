package dev.inmesh.runtime.xds;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.util.JsonFormat;
import dev.inmesh.api.config.core.SocketAddress;
import dev.inmesh.api.config.endpoint.ClusterLoadAssignment;
import dev.inmesh.api.config.endpoint.HealthStatus;
import dev.inmesh.api.config.endpoint.Locality;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

class ClusterLoadAssignmentParserTest {
    private static final ClusterLoadAssignmentParser PARSER = new ClusterLoadAssignmentParser();

    private static io.envoyproxy.envoy.config.endpoint.v3.ClusterLoadAssignment proto(String json) throws Exception {
        var b = io.envoyproxy.envoy.config.endpoint.v3.ClusterLoadAssignment.newBuilder();
        JsonFormat.parser().merge(json, b);
        return b.build();
    }

    private static String error(String json) throws Exception {
        var p = proto(json);
        return assertThrows(InvalidResourceException.class, () -> PARSER.parse(p)).getMessage();
    }

    @Test
    void parsesIstiosEndpointsWithLocalitiesPrioritiesWeightsAndHealth() throws Exception {
        String json;
        try (InputStream in = getClass().getResourceAsStream("/istio/endpoints.json")) {
            json = new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
        ClusterLoadAssignment cla = PARSER.parse(proto(json));
        assertEquals("outbound|9080||reviews.default.svc.cluster.local", cla.clusterName());
        assertEquals(140, cla.overprovisioningFactor());
        var east = cla.endpoints().get(0);
        assertEquals(new Locality("us-east1", "us-east1-b", ""), east.locality());
        assertEquals(4, east.loadBalancingWeight());
        assertEquals(new SocketAddress("10.44.0.12", 9080), east.lbEndpoints().get(0).address());
        assertEquals(HealthStatus.HEALTHY, east.lbEndpoints().get(0).healthStatus());
        assertEquals("istio", east.lbEndpoints().get(0).metadata().get("envoy.transport_socket_match", "tlsMode"));
        assertEquals(HealthStatus.DRAINING, east.lbEndpoints().get(1).healthStatus());
        assertEquals(3, east.lbEndpoints().get(1).loadBalancingWeight());
        var west = cla.endpoints().get(1);
        assertEquals(1, west.priority());
        assertEquals(0, west.loadBalancingWeight());
        assertEquals(1, west.lbEndpoints().get(0).loadBalancingWeight());
        assertEquals(HealthStatus.UNKNOWN, west.lbEndpoints().get(0).healthStatus());
    }

    @Test
    void aLocalitysMetadataIsKeptForTheTransportSocketMatches() throws Exception {
        ClusterLoadAssignment cla = PARSER.parse(proto("""
                {"clusterName": "x", "endpoints": [{"metadata": {"filterMetadata": {
                  "envoy.transport_socket_match": {"zone-tls": "on"}}}, "lbEndpoints": [
                  {"endpoint": {"address": {"socketAddress": {"address": "10.0.0.1", "portValue": 80}}}}]}]}"""));
        assertEquals("on", cla.endpoints().get(0).metadata().get("envoy.transport_socket_match", "zone-tls"));
    }

    @Test
    void aZeroEndpointWeightIsRejectedByNameAndPath() throws Exception {
        assertEquals("ClusterLoadAssignment \"x\": endpoints[0].lb_endpoints[1].load_balancing_weight: 0 "
                + "(expected: >= 1)", error("""
                {"clusterName": "x", "endpoints": [{"lbEndpoints": [
                  {"endpoint": {"address": {"socketAddress": {"address": "10.0.0.1", "portValue": 80}}}},
                  {"endpoint": {"address": {"socketAddress": {"address": "10.0.0.2", "portValue": 80}}},
                   "loadBalancingWeight": 0}]}]}"""));
    }

    @Test
    void aWeightAboveTheLargestIntIsRejectedWithItsValue() throws Exception {
        assertEquals("ClusterLoadAssignment \"x\": endpoints[0].lb_endpoints[0].load_balancing_weight: 3000000000 "
                + "(expected: <= 2147483647)", error("""
                {"clusterName": "x", "endpoints": [{"lbEndpoints": [
                  {"endpoint": {"address": {"socketAddress": {"address": "10.0.0.1", "portValue": 80}}},
                   "loadBalancingWeight": 3000000000}]}]}"""));
        assertEquals("ClusterLoadAssignment \"x\": endpoints[0].load_balancing_weight: 4294967295 "
                + "(expected: <= 2147483647)", error("""
                {"clusterName": "x", "endpoints": [{"loadBalancingWeight": 4294967295, "lbEndpoints": [
                  {"endpoint": {"address": {"socketAddress": {"address": "10.0.0.1", "portValue": 80}}}}]}]}"""));
    }

    @Test
    void anEdsHostGivenByNameIsRejectedAsEnvoysEdsRejectsIt() throws Exception {
        // Envoy's EDS resolves an endpoint's address as an IP address ("malformed IP address")
        assertEquals("ClusterLoadAssignment \"x\": endpoints[0].lb_endpoints[1].endpoint.address.socket_address."
                + "address: malformed IP address: reviews.default (expected: an IP address; a name is resolved only by"
                + " a STRICT_DNS or LOGICAL_DNS cluster)", error("""
                {"clusterName": "x", "endpoints": [{"lbEndpoints": [
                  {"endpoint": {"address": {"socketAddress": {"address": "fd00::7", "portValue": 80}}}},
                  {"endpoint": {"address": {"socketAddress": {"address": "reviews.default", "portValue": 80}}}}]}]}                """));
        assertEquals("ClusterLoadAssignment \"x\": endpoints[0].lb_endpoints[0].endpoint.additional_addresses[0]."
                + "address.socket_address.address: malformed IP address: localhost (expected: an IP address; a name is"
                + " resolved only by a STRICT_DNS or LOGICAL_DNS cluster)", error("""
                {"clusterName": "x", "endpoints": [{"lbEndpoints": [
                  {"endpoint": {"address": {"socketAddress": {"address": "10.0.0.1", "portValue": 80}},
                   "additionalAddresses": [{"address": {"socketAddress": {"address": "localhost", "portValue": 80}}}]\
                }}]}]}"""));
        // IPv4, IPv6 and a pipe are addresses
        assertEquals(3, PARSER.parse(proto("""
                {"clusterName": "x", "endpoints": [{"lbEndpoints": [
                  {"endpoint": {"address": {"socketAddress": {"address": "10.0.0.1", "portValue": 80}}}},
                  {"endpoint": {"address": {"socketAddress": {"address": "::1", "portValue": 80}}}},
                  {"endpoint": {"address": {"pipe": {"path": "/run/app.sock"}}}}]}]}""")).endpoints().get(0)
                .lbEndpoints().size());
    }

    @Test
    void aPriorityAbove128IsRejected() throws Exception {
        assertEquals("ClusterLoadAssignment \"x\": endpoints[0].priority: 129 (expected: <= 128)",
                error("{\"clusterName\": \"x\", \"endpoints\": [{\"priority\": 129}]}"));
    }

    @Test
    void aZeroOverprovisioningFactorIsRejected() throws Exception {
        assertEquals("ClusterLoadAssignment \"x\": policy.overprovisioning_factor: 0 (expected: > 0)",
                error("{\"clusterName\": \"x\", \"policy\": {\"overprovisioningFactor\": 0}}"));
    }

    @Test
    void anEndpointStaleAfterLimitIsNotSupportedWhereZeroMeansNeverStale() throws Exception {
        assertTrue(error("{\"clusterName\": \"x\", \"policy\": {\"endpointStaleAfter\": \"30s\"}}")
                .startsWith("ClusterLoadAssignment \"x\": policy.endpoint_stale_after: not supported"));
        String never = "{\"clusterName\": \"x\", \"policy\": {\"endpointStaleAfter\": \"0s\"}}";
        assertEquals(140, PARSER.parse(proto(never)).overprovisioningFactor());
    }

    @Test
    void weightedPriorityHealthIsReadAndOffByDefault() throws Exception {
        assertTrue(PARSER.parse(proto("{\"clusterName\": \"x\", \"policy\": {\"weightedPriorityHealth\": true}}"))
                .weightedPriorityHealth());
        assertFalse(PARSER.parse(proto("{\"clusterName\": \"x\"}")).weightedPriorityHealth());
    }

    @Test
    void dropOverloadsAreNotSupported() throws Exception {
        assertTrue(error("""
                {"clusterName": "x", "policy": {"dropOverloads": [{"category": "lb"}]}}""")
                .startsWith("ClusterLoadAssignment \"x\": policy.drop_overloads: not supported"));
    }

    @Test
    void anEndpointWithoutAnAddressIsRejected() throws Exception {
        assertEquals("ClusterLoadAssignment \"x\": endpoints[0].lb_endpoints[0].endpoint.address: required",
                error("{\"clusterName\": \"x\", \"endpoints\": [{\"lbEndpoints\": [{\"endpoint\": {}}]}]}"));
    }

    @Test
    void anEndpointsHealthCheckConfigGivesItsCheckPortHostnameAndOptOutAndAnotherAddressIsRefused() throws Exception {
        String cla = """
                {"clusterName": "c", "endpoints": [{"lbEndpoints": [{"endpoint": {
                  "address": {"socketAddress": {"address": "10.0.0.1", "portValue": 80}},
                  "healthCheckConfig": %s}}]}]}""";
        var ep = PARSER.parse(proto(cla.formatted(
                "{\"portValue\": 8081, \"hostname\": \"hc.local\", \"disableActiveHealthCheck\": true}")))
                .endpoints().get(0).lbEndpoints().get(0);
        assertEquals(new dev.inmesh.api.config.endpoint.HealthCheckConfig(8081, "hc.local", true),
                ep.healthCheckConfig());
        // Istio writes an empty one
        assertEquals(dev.inmesh.api.config.endpoint.HealthCheckConfig.NONE, PARSER.parse(proto(cla.formatted("{}")))
                .endpoints().get(0).lbEndpoints().get(0).healthCheckConfig());
        String e = error(cla.formatted(
                "{\"address\": {\"socketAddress\": {\"address\": \"10.0.0.2\", \"portValue\": 80}}}"));
        assertTrue(e.contains("endpoint.health_check_config.address: not supported"), e);
    }
}
