package dev.inmesh.runtime.xds;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.Value;
import dev.inmesh.runtime.runtime.LayeredRuntime;
import dev.inmesh.runtime.runtime.RuntimeEntry;
import io.envoyproxy.envoy.config.bootstrap.v3.RuntimeLayer;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * A bootstrap's {@code layered_runtime}, read as Envoy's runtime loader reads it ({@code Runtime::LoaderImpl},
 * {@code ProtoLayer}, {@code runtime_impl.cc}): each layer needs a name, unique among the layers, and one kind; at most
 * one is an admin layer; a static layer's nested objects are walked into keys joined by {@code .} (an object with a
 * {@code numerator} or {@code denominator}, or an empty one, is one value: a fractional percent), and a list or a null
 * is refused ({@code Invalid runtime entry value for KEY}). An empty {@code layered_runtime} has one admin layer with
 * no name, as Envoy's server adds one ({@code Configuration::InitialImpl}). A {@code disk_layer} (files Envoy watches)
 * and an {@code rtds_layer} (the runtime over xDS) are refused by name: Inmesh reads neither.
 */
public final class LayeredRuntimeParser {
    private LayeredRuntimeParser() {}

    private static final java.util.logging.Logger LOG = java.util.logging.Logger.getLogger(
            LayeredRuntimeParser.class.getName());
    /** Envoy's global downstream connection limit (its overload manager's runtime key), which Inmesh has not. */
    private static final String GLOBAL_MAX_CONNECTIONS = "overload.global_downstream_max_connections";

    /**
     * Warns of a global downstream connection limit in a static layer, which Inmesh does not apply: a limit that
     * loads and does nothing would otherwise be found out only under load. Istio's bootstrap sets it to 2147483647,
     * no limit in effect, which is not worth a warning.
     */
    private static void warnUnread(Map<String, RuntimeEntry> values, String at) {
        RuntimeEntry limit = values.get(GLOBAL_MAX_CONNECTIONS);
        if (limit != null && (limit.uint() == null || limit.uint() < Integer.MAX_VALUE)) {
            LOG.warning("layered_runtime." + at + "." + GLOBAL_MAX_CONNECTIONS + ": " + limit.raw()
                    + " is not applied: Inmesh has no global downstream connection limit (docs/configuration.md, "
                    + "runtime)");
        }
    }

    /** The layers of a bootstrap's {@code layered_runtime}. */
    public static LayeredRuntime parse(io.envoyproxy.envoy.config.bootstrap.v3.LayeredRuntime r) {
        Fields.onlyKnown(r, Set.of("layers"), Set.of());
        if (r.getLayersCount() == 0) {
            return new LayeredRuntime(List.of(new LayeredRuntime.AdminLayer("")), r);
        }
        List<LayeredRuntime.Layer> layers = new ArrayList<>();
        Set<String> names = new HashSet<>();
        boolean admin = false;
        for (int i = 0; i < r.getLayersCount(); i++) {
            RuntimeLayer l = r.getLayers(i);
            String at = "layers[" + i + "]";
            if (l.getName().isEmpty()) {
                throw new FieldError(at + ".name", "'' (expected: a name, as Envoy requires one)");
            }
            if (!names.add(l.getName())) {
                throw new FieldError(at + ".name", "'" + l.getName() + "': Duplicate layer name (expected: a name "
                        + "no other layer has)");
            }
            switch (l.getLayerSpecifierCase()) {
                case STATIC_LAYER -> {
                    Map<String, RuntimeEntry> values = new TreeMap<>();
                    l.getStaticLayer().getFieldsMap().forEach((key, v) -> walk(v, key, values, at + ".static_layer"));
                    warnUnread(values, at + ".static_layer");
                    layers.add(new LayeredRuntime.StaticLayer(l.getName(), values));
                }
                case ADMIN_LAYER -> {
                    if (admin) {
                        throw new FieldError(at + ".admin_layer", "Too many admin layers specified in "
                                + "LayeredRuntime, at most one may be specified");
                    }
                    admin = true;
                    layers.add(new LayeredRuntime.AdminLayer(l.getName()));
                }
                case DISK_LAYER -> throw new FieldError(at + ".disk_layer", "not supported by Inmesh (expected: a "
                        + "static_layer or an admin_layer; a file subscription's runtime is not read)");
                case RTDS_LAYER -> throw new FieldError(at + ".rtds_layer", "not supported by Inmesh (expected: a "
                        + "static_layer or an admin_layer; the runtime is not fetched over xDS)");
                case LAYERSPECIFIER_NOT_SET -> throw new FieldError(at, "no layer (expected: one of static_layer, "
                        + "admin_layer)");
            }
        }
        return new LayeredRuntime(layers, r);
    }

    /** A static layer's value under {@code key}: one entry, or an object's fields under {@code key.FIELD}. */
    private static void walk(Value v, String key, Map<String, RuntimeEntry> values, String at) {
        switch (v.getKindCase()) {
            case STRING_VALUE, NUMBER_VALUE, BOOL_VALUE -> values.putIfAbsent(key, RuntimeEntry.of(v, ""));
            case STRUCT_VALUE -> {
                var fields = v.getStructValue().getFieldsMap();
                if (fields.isEmpty() || fields.containsKey("numerator") || fields.containsKey("denominator")) {
                    values.putIfAbsent(key, RuntimeEntry.of(v, ""));
                } else {
                    fields.forEach((name, inner) -> walk(inner, key + "." + name, values, at));
                }
            }
            case LIST_VALUE, NULL_VALUE, KIND_NOT_SET -> throw new FieldError(at + "." + key,
                    "Invalid runtime entry value for " + key + " (expected: a number, a string, a boolean or an "
                            + "object)");
        }
    }

    /**
     * The value of an admin layer's text, as Envoy's {@code /runtime_modify} reads it ({@code ValueUtil::loadFromYaml}):
     * YAML, a scalar or an object ({@code {numerator: 5, denominator: TEN_THOUSAND}}); empty text is a null.
     *
     * @throws IllegalArgumentException saying why the text is not YAML
     */
    public static Value yaml(String text) {
        JsonNode node;
        try {
            node = EnvoyJson.tree(text);
        } catch (JsonProcessingException e) {
            if ("empty document".equals(e.getOriginalMessage())) {
                return Value.newBuilder().setNullValueValue(0).build();
            }
            throw new IllegalArgumentException("Unable to parse YAML '" + text + "': " + e.getOriginalMessage(), e);
        }
        try {
            return EnvoyJson.toMessage(node, Value.class);
        } catch (InvalidProtocolBufferException e) {
            throw new IllegalArgumentException("Unable to parse YAML '" + text + "': " + e.getMessage(), e);
        }
    }
}
