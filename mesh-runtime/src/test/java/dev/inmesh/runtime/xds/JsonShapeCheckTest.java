package dev.inmesh.runtime.xds;

import static dev.inmesh.runtime.xds.Fixtures.istio;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.google.protobuf.Descriptors.Descriptor;
import java.nio.file.Files;
import org.junit.jupiter.api.Test;

/** The JSON path finder reports nothing on valid documents, and the path of what protobuf would reject. */
class JsonShapeCheckTest {

    private static final Descriptor LISTENER = io.envoyproxy.envoy.config.listener.v3.Listener.getDescriptor();
    private static final Descriptor ROUTE = io.envoyproxy.envoy.config.route.v3.RouteConfiguration.getDescriptor();
    private static final Descriptor CLUSTER = io.envoyproxy.envoy.config.cluster.v3.Cluster.getDescriptor();

    private static JsonNode tree(String fixture) throws Exception {
        return EnvoyJson.tree(Files.readString(istio(fixture)));
    }

    private static JsonNode withoutType(JsonNode n) {
        ObjectNode copy = n.deepCopy();
        copy.remove("@type");
        return copy;
    }

    @Test
    void findsNothingInTheIstioFixturesThatProtobufAccepts() throws Exception {
        for (JsonNode l : tree("listeners.json")) {
            assertNull(JsonShapeCheck.find(l, LISTENER), l.path("name").asText());
        }
        for (JsonNode r : tree("routes.json")) {
            assertNull(JsonShapeCheck.find(r, ROUTE), r.path("name").asText());
        }
        for (JsonNode c : tree("bookinfo-clusters.json")) {
            assertNull(JsonShapeCheck.find(c, CLUSTER), c.path("name").asText());
        }
        JsonNode dump = tree("config_dump_full.json");
        int n = 0;
        for (JsonNode config : dump.get("configs")) {
            for (JsonNode d : config.path("dynamic_listeners")) {
                assertNull(JsonShapeCheck.find(withoutType(d.get("active_state").get("listener")), LISTENER));
                n++;
            }
            for (JsonNode d : config.path("dynamic_route_configs")) {
                assertNull(JsonShapeCheck.find(withoutType(d.get("route_config")), ROUTE));
                n++;
            }
            for (JsonNode d : config.path("dynamic_active_clusters")) {
                assertNull(JsonShapeCheck.find(withoutType(d.get("cluster")), CLUSTER));
                n++;
            }
            if (config.has("bootstrap")) {
                assertNull(JsonShapeCheck.find(config.get("bootstrap"),
                        io.envoyproxy.envoy.config.bootstrap.v3.Bootstrap.getDescriptor()));
                n++;
            }
        }
        assertEquals(3 + 1 + 10 + 1, n);
    }

    @Test
    void namesAnUnknownFieldInsideAKnownTypedConfig() throws Exception {
        JsonNode l = tree("listener-0.0.0.0_9080.json").get(0).deepCopy();
        ObjectNode tls = (ObjectNode) l.get("filterChains").get(0).get("filters").get(0).get("typedConfig");
        tls.put("streamIdleTimeoutz", "1s");
        FieldError e = JsonShapeCheck.find(l, LISTENER);
        assertEquals("filterChains[0].filters[0].typedConfig.streamIdleTimeoutz", e.field());
    }

    @Test
    void leavesTypesInmeshDoesNotKnowAlone() throws Exception {
        JsonNode l = tree("listener-0.0.0.0_9080.json").get(0).deepCopy();
        ObjectNode alpn = (ObjectNode) l.get("filterChains").get(0).get("filters").get(0).get("typedConfig")
                .get("httpFilters").get(2).get("typedConfig");
        alpn.put("anything", 1);
        assertNull(JsonShapeCheck.find(l, LISTENER));
    }

    @Test
    void namesAMapValueAndAWrapperOfTheWrongType() throws Exception {
        JsonNode c = tree("bookinfo-clusters.json").get(4).deepCopy();
        ((ObjectNode) c.get("circuitBreakers").get("thresholds").get(0)).put("maxRetries", -1);
        assertEquals("circuitBreakers.thresholds[0].maxRetries", JsonShapeCheck.find(c, CLUSTER).field());
        JsonNode c2 = tree("bookinfo-clusters.json").get(4).deepCopy();
        ((ObjectNode) c2.get("typedExtensionProtocolOptions")
                .get("envoy.extensions.upstreams.http.v3.HttpProtocolOptions").get("commonHttpProtocolOptions"))
                .put("idleTimeout", "an hour");
        assertEquals("typedExtensionProtocolOptions.envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
                + ".commonHttpProtocolOptions.idleTimeout", JsonShapeCheck.find(c2, CLUSTER).field());
    }
}
