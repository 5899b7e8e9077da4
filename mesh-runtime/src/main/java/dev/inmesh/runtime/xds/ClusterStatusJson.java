package dev.inmesh.runtime.xds;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;

/**
 * Turns one entry of Envoy's {@code /clusters?format=json} ({@code admin.v3.ClusterStatus}, which
 * {@code istioctl proxy-config endpoint -o json} prints) into a ClusterLoadAssignment document: each host status
 * becomes an endpoint with its address, weight, locality, priority and EDS health.
 */
final class ClusterStatusJson {
    private ClusterStatusJson() {}

    static JsonNode toLoadAssignment(JsonNode status) {
        JsonNodeFactory f = JsonNodeFactory.instance;
        ObjectNode cla = f.objectNode();
        cla.put("cluster_name", EnvoyConfigReader.text(status, "name"));
        ArrayNode groups = cla.putArray("endpoints");
        JsonNode hosts = EnvoyConfigReader.get(status, "host_statuses");
        for (int i = 0; hosts != null && i < hosts.size(); i++) {
            JsonNode h = hosts.get(i);
            ObjectNode group = groups.addObject();
            JsonNode locality = EnvoyConfigReader.get(h, "locality");
            if (locality != null) {
                group.set("locality", locality);
            }
            JsonNode priority = EnvoyConfigReader.get(h, "priority");
            if (priority != null) {
                group.set("priority", priority);
            }
            ObjectNode lb = group.putArray("lb_endpoints").addObject();
            ObjectNode endpoint = lb.putObject("endpoint");
            endpoint.set("address", EnvoyConfigReader.get(h, "address"));
            String hostname = EnvoyConfigReader.text(h, "hostname");
            if (!hostname.isEmpty()) {
                endpoint.put("hostname", hostname);
            }
            JsonNode weight = EnvoyConfigReader.get(h, "weight");
            if (weight != null) {
                lb.set("load_balancing_weight", weight);
            }
            JsonNode health = EnvoyConfigReader.get(h, "health_status");
            String eds = health == null ? "" : EnvoyConfigReader.text(health, "eds_health_status");
            if (!eds.isEmpty()) {
                lb.put("health_status", eds);
            }
        }
        return cla;
    }
}
