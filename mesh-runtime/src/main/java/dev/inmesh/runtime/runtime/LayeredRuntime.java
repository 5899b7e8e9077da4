package dev.inmesh.runtime.runtime;

import java.util.List;
import java.util.Map;

/**
 * A bootstrap's {@code layered_runtime} (Envoy's {@code config.bootstrap.v3.LayeredRuntime}), read: its layers in order,
 * a later one's values over an earlier one's. Inmesh has static layers and at most one admin layer; it refuses disk
 * and RTDS layers by name.
 *
 * @param layers the layers, in order
 * @param source the message it was read from, which the admin's config dump shows in its bootstrap
 */
public record LayeredRuntime(List<Layer> layers, io.envoyproxy.envoy.config.bootstrap.v3.LayeredRuntime source) {
    public LayeredRuntime {
        layers = List.copyOf(layers);
    }

    /** One layer of the runtime, named as {@code /runtime} lists it. */
    public sealed interface Layer {
        String name();
    }

    /**
     * A {@code static_layer}: its values by key, a nested object's keys joined to its own by {@code .}
     * ({@code {health_check: {min_interval: 5}}} is {@code health_check.min_interval}).
     */
    public record StaticLayer(String name, Map<String, RuntimeEntry> values) implements Layer {
        public StaticLayer {
            values = Map.copyOf(values);
        }
    }

    /** The {@code admin_layer}: the values the admin's {@code /runtime_modify} sets, none at first. */
    public record AdminLayer(String name) implements Layer {}

    /** Whether it has an admin layer, whose values {@code /runtime_modify} sets. */
    public boolean hasAdminLayer() {
        return layers.stream().anyMatch(l -> l instanceof AdminLayer);
    }
}
