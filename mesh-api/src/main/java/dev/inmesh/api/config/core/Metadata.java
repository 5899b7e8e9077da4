package dev.inmesh.api.config.core;

import dev.inmesh.api.config.Checks;
import java.util.Map;

/**
 * Envoy's {@code core.v3.Metadata}: filter metadata keyed by filter name (such as {@code istio} or
 * {@code envoy.lb}), each a JSON-like map of plain Java values (String, Double, Boolean, List, Map, or null).
 */
public record Metadata(Map<String, Map<String, Object>> filterMetadata) {
    public static final Metadata EMPTY = new Metadata(Map.of());

    public Metadata {
        filterMetadata = Checks.map(filterMetadata);
    }

    /** A value under {@code filter} and {@code key}, or null. */
    public Object get(String filter, String key) {
        Map<String, Object> values = filterMetadata.get(filter);
        return values == null ? null : values.get(key);
    }
}
