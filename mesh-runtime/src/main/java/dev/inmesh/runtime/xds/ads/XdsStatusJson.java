package dev.inmesh.runtime.xds.ads;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;

/**
 * {@link XdsStatus} as JSON, the body of the admin endpoint {@code /debug/xds_status}, and back. Field names are
 * snake_case as Envoy's admin output; times are RFC 3339; absent values are omitted.
 */
public final class XdsStatusJson {
    private static final ObjectMapper MAPPER = new ObjectMapper();

    private XdsStatusJson() {}

    /** The JSON text of a status, pretty-printed. */
    public static String encode(XdsStatus s) {
        ObjectNode root = MAPPER.createObjectNode();
        root.put("server", s.server());
        root.put("connected", s.connected());
        time(root, "connected_since", s.connectedSince());
        if (!s.lastError().isEmpty()) {
            root.put("last_error", s.lastError());
        }
        root.put("ready", s.ready());
        ArrayNode types = root.putArray("types");
        for (XdsStatus.TypeStatus t : s.types()) {
            ObjectNode n = types.addObject();
            n.put("type", t.type());
            n.put("type_url", t.typeUrl());
            n.put("acked_version", t.ackedVersion());
            n.put("nonce", t.nonce());
            time(n, "last_updated", t.lastUpdated());
            if (!t.lastNackError().isEmpty()) {
                n.put("last_nack_version", t.lastNackVersion());
                n.put("last_nack_error", t.lastNackError());
                time(n, "last_nack_at", t.lastNackAt());
            }
            n.put("resources", t.resources());
            n.put("wildcard", t.wildcard());
            ArrayNode names = n.putArray("subscribed");
            t.subscribed().forEach(names::add);
        }
        try {
            return MAPPER.writerWithDefaultPrettyPrinter().writeValueAsString(root);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    /**
     * Reads a status back from its JSON.
     *
     * @throws IllegalArgumentException when the text is not a status
     */
    public static XdsStatus decode(String json) {
        JsonNode root;
        try {
            root = MAPPER.readTree(json);
        } catch (JsonProcessingException e) {
            throw new IllegalArgumentException("not JSON: " + e.getOriginalMessage(), e);
        }
        if (root == null || !root.isObject() || !root.path("types").isArray()) {
            throw new IllegalArgumentException("not an xDS status: expected an object with \"types\"");
        }
        List<XdsStatus.TypeStatus> types = new ArrayList<>();
        for (JsonNode n : root.get("types")) {
            List<String> names = new ArrayList<>();
            n.path("subscribed").forEach(x -> names.add(x.asText()));
            types.add(new XdsStatus.TypeStatus(n.path("type").asText(""), n.path("type_url").asText(""),
                    n.path("acked_version").asText(""), n.path("nonce").asText(""), time(n, "last_updated"),
                    n.path("last_nack_version").asText(""), n.path("last_nack_error").asText(""),
                    time(n, "last_nack_at"), n.path("resources").asInt(0), n.path("wildcard").asBoolean(false),
                    names));
        }
        return new XdsStatus(root.path("server").asText(""), root.path("connected").asBoolean(false),
                time(root, "connected_since"), root.path("last_error").asText(""),
                root.path("ready").asBoolean(false), types);
    }

    private static void time(ObjectNode n, String field, Instant t) {
        if (t != null) {
            n.put(field, t.toString());
        }
    }

    private static Instant time(JsonNode n, String field) {
        String t = n.path(field).asText("");
        if (t.isEmpty()) {
            return null;
        }
        try {
            return Instant.parse(t);
        } catch (java.time.format.DateTimeParseException e) {
            throw new IllegalArgumentException(field + ": \"" + t + "\" (expected: an RFC 3339 time)", e);
        }
    }
}
